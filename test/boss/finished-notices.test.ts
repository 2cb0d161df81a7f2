/**
 * FinishedNotices: the jobs finished in one turn go out in one message, long turns in chunks; a job
 * whose submitter waits carries its final record (within a size bound). And on the boss's bench:
 * only such jobs are announced with their record.
 */
import t, { type Test } from 'tap'
import type { Job } from '../../jobs/model.js'
import type { FinishedNotice } from '../../jobs/finished-notice.js'
import {
  FinishedNotices,
  MAX_MESSAGE_RECORD_BYTES,
  MAX_NOTICES_PER_MESSAGE,
  MAX_RECORD_BYTES,
} from '../../worker/boss/finished-notices.js'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

const nextTurn = () => new Promise((r) => setImmediate(r))
const final = (id: string, state: Job['state'] = 'succeeded', result: unknown = 'ok'): Job =>
  newJob({ id, state, attempts: 1, result, finishedAt: new Date().toISOString() })

t.test('one message per turn, in order, none lost or repeated', async (t) => {
  const sent: FinishedNotice[][] = []
  const notices = new FinishedNotices((jobs) => sent.push(jobs))
  const [a, b, c] = [final(newJob().id), final(newJob().id, 'failed'), final(newJob().id, 'cancelled')]
  notices.add(a)
  notices.add(b)
  t.same(sent, [], 'nothing before the turn ends')
  await nextTurn()
  notices.add(c)
  await nextTurn()
  await nextTurn()
  t.same(sent, [
    [
      { id: a.id, state: 'succeeded' },
      { id: b.id, state: 'failed' },
    ],
    [{ id: c.id, state: 'cancelled' }],
  ])
})

t.test('a turn with more than a message holds is sent in chunks', async (t) => {
  const sent: FinishedNotice[][] = []
  const notices = new FinishedNotices((jobs) => sent.push(jobs))
  const n = 2 * MAX_NOTICES_PER_MESSAGE + 5
  const jobs = Array.from({ length: n }, () => final(newJob().id))
  for (const j of jobs) notices.add(j)
  await nextTurn()
  t.same(
    sent.map((m) => m.length),
    [MAX_NOTICES_PER_MESSAGE, MAX_NOTICES_PER_MESSAGE, 5],
  )
  t.same(
    sent.flat().map((j) => j.id),
    jobs.map((j) => j.id),
  )
})

t.test('a record goes along when asked for and small enough; records split messages by bytes', async (t) => {
  const sent: FinishedNotice[][] = []
  const notices = new FinishedNotices((jobs) => sent.push(jobs))
  const waited = final(newJob().id)
  const plain = final(newJob().id)
  const huge = final(newJob().id, 'succeeded', 'x'.repeat(MAX_RECORD_BYTES + 1))
  notices.add(waited, true)
  notices.add(plain)
  notices.add(huge, true)
  await nextTurn()
  t.same(
    sent,
    [
      [
        { id: waited.id, state: 'succeeded', job: waited },
        { id: plain.id, state: 'succeeded' },
        { id: huge.id, state: 'succeeded' },
      ],
    ],
    'only the waited, small record is carried',
  )

  sent.length = 0
  const big = 'y'.repeat(MAX_RECORD_BYTES - 1024)
  const perMessage = Math.ceil(MAX_MESSAGE_RECORD_BYTES / (MAX_RECORD_BYTES - 1024))
  const many = Array.from({ length: 2 * perMessage }, () => final(newJob().id, 'succeeded', big))
  for (const j of many) notices.add(j, true)
  await nextTurn()
  t.ok(sent.length >= 2, `records of ${many.length} × ${big.length} bytes go in ${sent.length} messages`)
  for (const m of sent) {
    const bytes = Buffer.byteLength(JSON.stringify(m))
    t.ok(bytes < MAX_MESSAGE_RECORD_BYTES + MAX_RECORD_BYTES + 4096, `a message of ${bytes} bytes stays bounded`)
  }
  t.same(
    sent.flat().map((n) => [n.id, n.job?.id]),
    many.map((j) => [j.id, j.id]),
    'every notice once, in order, each with its record',
  )
})

/** A job whose submitter waits and one nobody waits for, both run and finished by a term of epoch 1. */
async function waitedAndPlainFinished(t: Test) {
  const w = new FakeWorker('w1')
  const b = bench(w)
  const waited = newJob()
  const plain = newJob()
  b.store.put(waited, { waited: true })
  b.store.put(plain)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.running.has(waited.id) && w.running.has(plain.id), { what: 'both running' })
  w.finish(waited.id)
  w.finish(plain.id)
  await w.deliver(term)
  await waitFor(() => b.finished.length === 2, { what: 'both announced' })
  return { b, waited, plain }
}

t.test('the boss announces with its record only a job whose submitter waits', async (t) => {
  const { b, waited } = await waitedAndPlainFinished(t)
  t.same(b.announcedWithRecord, [waited.id], 'only the waited job carries its record')
  const announced = b.finished.find((j) => j.id === waited.id)!
  t.same(announced, b.store.current(waited.id), 'the record announced is the record stored')
})

t.test(
  "a waited job's final record is announced as its write is sent, with that write's acknowledgement subject",
  async (t) => {
    const { b, waited } = await waitedAndPlainFinished(t)
    t.same(
      b.announcedFinals.map((a) => a.job.id),
      [waited.id],
      'only the waited job is announced before its write lands',
    )
    t.same(b.store.announcedWrites, b.announcedFinals, 'the announcement names the subject the store acknowledges on')
    t.same(b.announcedFinals[0]!.job, b.store.current(waited.id), 'and carries the record as stored')
  },
)
