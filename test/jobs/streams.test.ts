/**
 * The job store's streams against a real nats-server: submit batches and find each job by id,
 * idempotency claims, fenced batch state records, final records written once, listings newest first
 * with cursors (every job exactly once while more are added), expiry of finished jobs by JetStream
 * itself, a takeover read that never touches finished history, the DONE checkpoint (only the
 * final records after it are read back), and the listing index's entries since a moment.
 */
import t from 'tap'
import { jetstream } from '@nats-io/jetstream'
import { monotonicFactory } from 'ulid'
import type { Job } from '../../jobs/model.js'
import { doneMask, emptyState, JobStreams, type SubmittedJob } from '../../jobs/streams/index.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { logger, natsConn } from './store-helpers.js'

const newBatchId = monotonicFactory()
const spec = (over: Partial<SubmittedJob> = {}): SubmittedJob => ({
  function: 'echo',
  payload: { n: 1 },
  priority: 0,
  timeoutMs: 60_000,
  maxAttempts: 1,
  ...over,
})

const nats = await startNats()
t.teardown(() => nats.close())

async function open(t: Parameters<typeof natsConn>[0], retentionMs = 3_600_000) {
  const nc = await natsConn(t, nats.url)
  return JobStreams.open({ nc, cluster: uniqueName('s'), logger, retentionMs })
}

async function submit(s: JobStreams, jobs: SubmittedJob[]): Promise<string[]> {
  const plan = s.submitter.plan(jobs, newBatchId)
  await s.submitter.publish(plan, jobs, new Date().toISOString())
  return plan.ids
}

/** What a boss does when a job finishes: final record, then the batch's done mask. */
async function finish(s: JobStreams, job: Job, state: Job['state'] = 'succeeded'): Promise<void> {
  const final: Job = {
    ...job,
    state,
    attempts: 1,
    finishedAt: new Date().toISOString(),
    epoch: 1,
    ...(state === 'succeeded' ? { result: job.payload } : {}),
  }
  await s.boss.writeFinal(final)
  await s.boss.index([{ id: job.id, state, fn: job.function }])
}

t.test('submit a batch: each job is found by its id, queued; an unknown id is null', async (t) => {
  const s = await open(t)
  const ids = await submit(s, [spec({ payload: 'a' }), spec({ payload: 'b', priority: 5 })])
  t.equal(ids.length, 2)
  const a = await s.reader.get(ids[0]!)
  t.equal(a?.state, 'queued')
  t.equal(a?.payload, 'a')
  t.equal((await s.reader.get(ids[1]!))?.priority, 5)
  t.equal(await s.reader.get(`${ids[0]!.slice(0, 26)}-999`), null, 'index past the batch')
  t.equal(await s.reader.get('not-an-id'), null)
})

t.test('a retried publish of the same plan is stored once', async (t) => {
  const s = await open(t)
  const jobs = [spec()]
  const plan = s.submitter.plan(jobs, newBatchId)
  await s.submitter.publish(plan, jobs, new Date().toISOString())
  await s.submitter.publish(plan, jobs, new Date().toISOString())
  const { last } = await (
    s as unknown as { submitter: { io: { bounds(x: string): Promise<{ last: number }> } } }
  ).submitter.io.bounds(s.names.submit)
  t.equal(last, 1, 'one message')
})

t.test('batches larger than max_payload are split; every id still resolves', async (t) => {
  const s = await open(t)
  const big = 'x'.repeat(300 * 1024)
  const ids = await submit(s, [
    spec({ payload: big }),
    spec({ payload: big }),
    spec({ payload: big }),
    spec({ payload: big }),
  ])
  t.ok(new Set(ids.map((id) => id.slice(0, 26))).size >= 2, 'more than one batch')
  for (const id of ids) t.equal((await s.reader.get(id))?.payload, big)
})

t.test('idempotency: the first claim holds', async (t) => {
  const s = await open(t)
  const first = await s.submitter.claim('k1', `${newBatchId()}-000`)
  const second = await s.submitter.claim('k1', `${newBatchId()}-000`)
  t.equal(second.jobId, first.jobId)
  const moved = await s.submitter.repoint('k1', second, `${newBatchId()}-003`)
  t.not(moved.jobId, first.jobId, 'an abandoned claim can be moved once')
  t.equal(
    (await s.submitter.repoint('k1', second, `${newBatchId()}-004`)).jobId,
    moved.jobId,
    'but not twice from the same state',
  )
})

t.test('batch state records are fenced by epoch and compare-and-set', async (t) => {
  const s = await open(t)
  const [id] = await submit(s, [spec(), spec()])
  const batch = id!.slice(0, 26)
  const w1 = await s.boss.writeState(
    { ...emptyState(batch, 2, 3), jobs: { 0: { state: 'running', attempts: 1, worker: 'w1' } } },
    0,
  )
  t.ok(w1.ok)
  const stale = await s.boss.writeState(emptyState(batch, 2, 3), 0)
  t.equal(stale.ok, false, 'a write from an older revision loses the race')
  t.equal(!stale.ok && stale.current?.jobs['0']?.worker, 'w1', 'and sees the current record')
  // A deposed boss (epoch 2) still holds the revision it last saw (0): the newer epoch's record wins.
  await t.rejects(
    s.boss.writeState(emptyState(batch, 2, 2), 0),
    { code: 'BOSUN_ERR_STALE_EPOCH' },
    'an older epoch never overwrites',
  )
  const job = await s.reader.get(id!)
  t.equal(job?.state, 'running')
  t.equal(job?.worker, 'w1')
})

t.test('a final record is written once: the first one stands', async (t) => {
  const s = await open(t)
  const [id] = await submit(s, [spec()])
  const job = (await s.reader.get(id!))!
  const a = await s.boss.writeFinal({ ...job, state: 'succeeded', result: 1, finishedAt: new Date().toISOString() })
  const b = await s.boss.writeFinal({
    ...job,
    state: 'failed',
    error: { message: 'late' },
    finishedAt: new Date().toISOString(),
  })
  t.equal(a.created, true)
  t.equal(b.created, false)
  t.equal(b.job.state, 'succeeded')
  t.equal((await s.reader.get(id!))?.state, 'succeeded')
})

t.test(
  'DONE checkpoint: fenced compare-and-set; final records after it are read, the ones before are not',
  async (t) => {
    const s = await open(t)
    t.same(await s.boss.readCheckpoint(), { checkpoint: null, revision: 0 }, 'none yet')
    const ids = await submit(s, [spec(), spec(), spec()])
    const jobs = await Promise.all(ids.map(async (id) => (await s.reader.get(id))!))
    const final = (j: Job): Job => ({ ...j, state: 'succeeded', result: j.id, finishedAt: new Date().toISOString() })
    const first = await s.boss.writeFinal(final(jobs[0]!))
    const again = await s.boss.writeFinal(final(jobs[0]!))
    t.equal(again.seq, first.seq, 'a final record already there answers with its sequence')
    const w1 = await s.boss.writeCheckpoint({ v: 1, epoch: 1, doneSeq: first.seq }, 0)
    t.equal(w1.ok, true)
    const later = [await s.boss.writeFinal(final(jobs[1]!)), await s.boss.writeFinal(final(jobs[2]!))]
    const tail = await s.boss.finalsAfter(first.seq)
    t.same(
      tail.finals.map((f) => [f.job.id, f.seq]),
      later.map((w) => [w.job.id, w.seq]),
      'only the records after the checkpoint, in order',
    )
    t.equal(tail.lastSeq, later[1]!.seq)
    t.same((await s.boss.finalsAfter(tail.lastSeq)).finals, [], 'nothing after the end')
    const stale = await s.boss.writeCheckpoint({ v: 1, epoch: 1, doneSeq: 99 }, 0)
    t.equal(stale.ok, false, 'compare-and-set: a writer with an old revision loses')
    t.same(stale.checkpoint, { v: 1, epoch: 1, doneSeq: first.seq }, '...and learns the stored one')
    t.equal((await s.boss.writeCheckpoint({ v: 1, epoch: 2, doneSeq: tail.lastSeq }, stale.revision)).ok, true)
    t.equal((await s.boss.readCheckpoint()).checkpoint?.epoch, 2)
    // The checkpoint lives in STATE but is no batch: the takeover read neither delivers nor removes it.
    const seen: string[] = []
    let done = false
    const stop = s.boss.watchBatches(
      (b) => seen.push(b.batch),
      () => (done = true),
    )
    t.teardown(stop)
    await waitFor(() => done, { what: 'initial load' })
    t.same(seen, [ids[0]!.slice(0, 26)])
    t.equal((await s.boss.readCheckpoint()).checkpoint?.doneSeq, tail.lastSeq, 'still there')
  },
)

t.test('the listing index since a moment: the entries stored at or after it, garbage skipped', async (t) => {
  const nc = await natsConn(t, nats.url)
  const s = await JobStreams.open({ nc, cluster: uniqueName('s'), logger, retentionMs: 3_600_000 })
  await s.boss.index([{ id: 'old-1', state: 'succeeded', fn: 'echo' }])
  await new Promise((r) => setTimeout(r, 30))
  const since = Date.now()
  await s.boss.index([
    { id: 'a', state: 'succeeded', fn: 'echo' },
    { id: 'b', state: 'failed', fn: 'echo', run: 2 },
    { id: 'c', state: 'cancelled', fn: 'other' },
  ])
  await jetstream(nc).publish(s.subjects.index('succeeded', 'echo'), 'not json')
  t.same([...(await s.boss.indexedSince(since))].sort(), ['a', 'b@2', 'c'], 'every state and function, with runs')
  const earlier = [...(await s.boss.indexedSince(since - 60_000))].sort()
  t.same(earlier, ['a', 'b@2', 'c', 'old-1'], 'earlier: the older one too')
  t.same([...(await s.boss.indexedSince(Date.now() + 60_000))], [], 'nothing stored after now')
})

t.test('a closed batch leaves only its final records', async (t) => {
  const s = await open(t)
  const ids = await submit(s, [spec(), spec()])
  const batch = await s.boss.readBatch(ids[0]!.slice(0, 26))
  t.ok(batch)
  for (const id of ids) await finish(s, (await s.reader.get(id))!)
  await s.boss.writeState({ ...emptyState(batch!.batch, 2, 1), done: doneMask([0, 1], 2) }, 0)
  await s.boss.closeBatch(batch!.batch, batch!.submitSeq, (await s.boss.readBatch(batch!.batch))!.stateRevision)
  t.equal(await s.boss.readBatch(batch!.batch), null)
  for (const id of ids) t.equal((await s.reader.get(id))?.state, 'succeeded')
})

t.test('closing a batch again (a retry whose first delete landed) is done, not an error', async (t) => {
  const s = await open(t)
  const ids = await submit(s, [spec()])
  const batch = (await s.boss.readBatch(ids[0]!.slice(0, 26)))!
  await finish(s, (await s.reader.get(ids[0]!))!)
  await s.boss.closeBatch(batch.batch, batch.submitSeq, 0)
  await s.boss.closeBatch(batch.batch, batch.submitSeq, 0)
  t.equal(await s.boss.readBatch(batch.batch), null)
  t.equal((await s.reader.get(ids[0]!))?.state, 'succeeded')
})

t.test('the boss reads open batches only, with their state', async (t) => {
  const s = await open(t)
  const closed = await submit(s, [spec()])
  const open1 = await submit(s, [spec(), spec()])
  const cb = (await s.boss.readBatch(closed[0]!.slice(0, 26)))!
  await finish(s, (await s.reader.get(closed[0]!))!)
  await s.boss.closeBatch(cb.batch, cb.submitSeq, 0)
  await s.boss.writeState(
    { ...emptyState(open1[0]!.slice(0, 26), 2, 1), jobs: { 1: { state: 'running', attempts: 1, worker: 'w' } } },
    0,
  )
  const seen: string[] = []
  let done = false
  const stop = s.boss.watchBatches(
    (b) => seen.push(`${b.batch}:${b.state ? Object.keys(b.state.jobs).join(',') : '-'}`),
    () => (done = true),
  )
  t.teardown(stop)
  await waitFor(() => done, { what: 'initial load' })
  t.same(seen, [`${open1[0]!.slice(0, 26)}:1`], 'the closed batch is not read; the open one comes with its state')
  const later = await submit(s, [spec()])
  await waitFor(() => seen.length === 2, { what: 'a new batch delivered live' })
  t.equal(seen[1], `${later[0]!.slice(0, 26)}:-`)
})

t.test('listing: newest first, filters, cursors walk every job exactly once while jobs are added', async (t) => {
  const s = await open(t)
  const queued: string[] = []
  for (let i = 0; i < 7; i++) queued.push(...(await submit(s, [spec({ function: i % 2 ? 'echo' : 'sleep' }), spec()])))
  const finished: string[] = []
  for (const id of queued.slice(0, 4)) {
    await finish(s, (await s.reader.get(id))!, finished.length % 2 ? 'failed' : 'succeeded')
    finished.push(id)
  }
  // the finished ones left their batches (as the boss does once a batch's jobs are all final)
  for (const b of new Set(queued.slice(0, 4).map((id) => id.slice(0, 26)))) {
    const ob = (await s.boss.readBatch(b))!
    await s.boss.writeState({ ...emptyState(b, 2, 1), done: doneMask([0, 1], 2) }, ob.stateRevision)
    await s.boss.closeBatch(b, ob.submitSeq, (await s.boss.readBatch(b))!.stateRevision)
  }
  const all: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const page = await s.reader.list({ limit: 3, ...(cursor ? { cursor } : {}) })
    all.push(...page.jobs.map((j) => j.id))
    cursor = page.next
    if (pages++ === 0) await submit(s, [spec()]) // added while paging: newer than the cursor, not on later pages
  } while (cursor)
  const unfinished = queued.slice(4)
  t.same(
    all,
    [...[...unfinished].reverse(), ...[...finished].reverse()],
    'unfinished newest first, then finished newest first, each once',
  )
  const failed = await s.reader.list({ state: 'failed', limit: 10 })
  t.same(
    failed.jobs.map((j) => j.id),
    [finished[3], finished[1]],
  )
  const sleepQueued = await s.reader.list({ state: 'queued', function: 'sleep', limit: 10 })
  t.ok(sleepQueued.jobs.every((j) => j.function === 'sleep' && j.state === 'queued'))
  await t.rejects(s.reader.list({ limit: 1, cursor: 'bogus!' }), { code: 'BOSUN_ERR_VALIDATION' })
  await t.rejects(s.reader.list({ limit: 1, cursor: 'bm9wZQ' }), { code: 'BOSUN_ERR_VALIDATION' })
})

t.test("finished jobs expire by the stream's age limit, with nothing running", async (t) => {
  const s = await open(t, 1500)
  const [id] = await submit(s, [spec()])
  const job = (await s.reader.get(id!))!
  await finish(s, job)
  const b = (await s.boss.readBatch(id!.slice(0, 26)))!
  await s.boss.writeState({ ...emptyState(b.batch, 1, 1), done: doneMask([0], 1) }, 0)
  await s.boss.closeBatch(b.batch, b.submitSeq, (await s.boss.readBatch(b.batch))!.stateRevision)
  t.equal((await s.reader.get(id!))?.state, 'succeeded')
  await waitFor(async () => (await s.reader.get(id!)) === null, { timeoutMs: 15_000, what: 'expired' })
  t.same((await s.reader.list({ limit: 10 })).jobs, [], 'and gone from listings')
})
