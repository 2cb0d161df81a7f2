/**
 * Final records in groups (jobs/streams/final-groups.ts), against a real nats-server: the chain of a
 * batch's groups refuses a writer that did not see the groups before its write (a deposed boss's held
 * write among them) and tells it what was written; readers find a grouped final by job id — in the
 * batch's last group or an earlier one, for GET, listings, a redrive's read and a takeover's read of
 * DONE — and a reopened record on the job's own subject wins over its group. Garbage on a group subject
 * is skipped with a warning.
 */
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstream } from '@nats-io/jetstream'
import { monotonicFactory } from 'ulid'
import type { Job } from '../../jobs/model.js'
import { JobStreams, type SubmittedJob } from '../../jobs/streams/index.js'
import type { FinalGroup, GroupSpan } from '../../jobs/streams/final-groups.js'
import { reopenedRecordOf } from '../../jobs/streams/reopened.js'
import { captureLogger } from '../executor/helpers.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { natsConn } from './store-helpers.js'

const newBatchId = monotonicFactory()
const spec: SubmittedJob = { function: 'echo', payload: { n: 1 }, priority: 0, timeoutMs: 60_000, maxAttempts: 1 }

const nats = await startNats()
t.teardown(() => nats.close())

async function open(t: Parameters<typeof natsConn>[0]) {
  const nc = await natsConn(t, nats.url)
  const logs = captureLogger()
  const cluster = uniqueName('fg')
  const s = await JobStreams.open({ nc, cluster, logger: logs.logger, retentionMs: 3_600_000 })
  return { s, logs, cluster }
}

/** A submitted batch of `n` jobs and their records as submitted. */
async function batchOf(s: JobStreams, n: number): Promise<{ batch: string; jobs: Job[] }> {
  const specs = Array.from({ length: n }, () => spec)
  const plan = s.submitter.plan(specs, newBatchId)
  await s.submitter.publish(plan, specs, new Date().toISOString())
  const jobs = await Promise.all(plan.ids.map(async (id) => (await s.reader.get(id))!))
  return { batch: plan.ids[0]!.slice(0, 26), jobs }
}

function final(job: Job, state: Job['state'], epoch: number): Job {
  return { ...job, state, attempts: 1, finishedAt: new Date().toISOString(), epoch, result: { by: epoch } }
}

function group(batch: string, finals: Job[], epoch: number, earlier: GroupSpan[]): FinalGroup {
  return { v: 1, batch, part: 0, epoch, finals, earlier }
}

t.test('a chain of groups: readers find each final, a writer that missed a group is told of it', async (t) => {
  const { s } = await open(t)
  const { batch, jobs } = await batchOf(s, 4)
  const w1 = await s.boss.writeFinalGroup(group(batch, [final(jobs[0]!, 'succeeded', 2)], 2, []), 0)
  t.ok(w1.ok, 'the first group is written expecting no group')
  const seq1 = w1.ok ? w1.seq : 0
  const w2 = await s.boss.writeFinalGroup(
    group(batch, [final(jobs[1]!, 'failed', 2), final(jobs[2]!, 'succeeded', 2)], 2, [[seq1, 0, 0]]),
    seq1,
  )
  t.ok(w2.ok, 'the second expects the first')
  const seq2 = w2.ok ? w2.seq : 0

  t.equal((await s.reader.get(jobs[0]!.id))?.state, 'succeeded', 'a final in an earlier group is found by id')
  t.equal((await s.reader.get(jobs[1]!.id))?.state, 'failed', 'a final in the last group is found by id')
  t.equal((await s.reader.get(jobs[3]!.id))?.state, 'queued', 'a job in no group reads as submitted')

  // A deposed boss's write, held since before the second group: it expected the first.
  const late = await s.boss.writeFinalGroup(group(batch, [final(jobs[2]!, 'cancelled', 1)], 1, [[seq1, 0, 0]]), seq1)
  t.notOk(late.ok, 'a write expecting an older chain is refused')
  if (!late.ok) {
    t.same(
      late.after.map((g) => g.seq),
      [seq2],
      'and told of the group it missed',
    )
    t.equal(late.last, seq2, "with the chain's last sequence")
    t.equal(
      late.after[0]!.group.finals.find((j) => j.id === jobs[2]!.id)?.state,
      'succeeded',
      'which holds the final that stands',
    )
  }
  t.equal((await s.reader.get(jobs[2]!.id))?.state, 'succeeded', 'the first final of the run stands')

  const stored = await s.boss.readDone(jobs[1]!.id)
  t.equal(stored?.record.kind, 'final', "the boss's read finds a grouped final")
  t.equal(stored?.seq, seq2, "at its group's sequence")
  t.equal(stored?.subjectSeq, 0, 'with nothing on its own subject')

  const tail = await s.boss.finalsAfter(seq1 - 1)
  t.same(
    tail.finals.map((f) => [f.job.id, f.seq]),
    [
      [jobs[0]!.id, seq1],
      [jobs[1]!.id, seq2],
      [jobs[2]!.id, seq2],
    ],
    "a takeover's read of DONE counts each final of a group, at the group's sequence",
  )
})

t.test('a listing page and a redrive read grouped finals; a reopened record wins over its group', async (t) => {
  const { s } = await open(t)
  const { batch, jobs } = await batchOf(s, 3)
  const w = await s.boss.writeFinalGroup(
    group(
      batch,
      jobs.map((j) => final(j, 'failed', 1)),
      1,
      [],
    ),
    0,
  )
  t.ok(w.ok)
  await s.boss.index(jobs.map((j) => ({ id: j.id, state: 'failed' as const, fn: 'echo' })))
  const page = await s.reader.list({ state: 'failed', limit: 10 })
  t.same(page.jobs.map((j) => j.id).sort(), jobs.map((j) => j.id).sort(), 'the listing finds every grouped final')

  const cur = (await s.boss.readDone(jobs[0]!.id))!
  t.equal(cur.record.kind, 'final')
  const rec = reopenedRecordOf((cur.record as { job: Job }).job, { batch: newBatchId(), index: 0, requestId: 'r1' }, 1)
  t.equal(
    await s.boss.writeReopened(rec, cur.seq),
    null,
    "a reopen expecting the group's sequence on the job's subject is refused",
  )
  const seq = await s.boss.writeReopened(rec, cur.subjectSeq)
  t.ok(seq !== null && seq > 0, 'a reopen expecting its own subject empty is written')
  t.equal(await s.boss.writeReopened(rec, cur.subjectSeq), null, 'a second reopen of the same final is refused')
  const now = await s.boss.readDone(jobs[0]!.id)
  t.equal(now?.record.kind, 'reopened', "the job's own record wins over its group")
  t.equal((await s.reader.get(jobs[0]!.id))?.state, 'queued', 'and GET shows the reopened run')
  t.equal((await s.reader.get(jobs[1]!.id))?.state, 'failed', 'the others of the group are unchanged')
})

t.test('garbage on a group subject is skipped with a warning', async (t) => {
  const { s, logs, cluster } = await open(t)
  const { batch, jobs } = await batchOf(s, 2)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const js = jetstream(nc)
  const bad = await js.publish(`bosun.${cluster}.done.g.${batch}.0`, new TextEncoder().encode('{"v":1,"finals":"no"}'))
  t.equal(await s.reader.get(jobs[0]!.id).then((j) => j?.state), 'queued', 'GET answers from the submission')
  t.ok(
    logs.lines.some((l) => l.msg === 'skipping garbage in the job store'),
    'with a warning',
  )
  const tail = await s.boss.finalsAfter(bad.seq - 1)
  t.same(tail.finals, [], "a takeover's read of DONE skips it")
  // A writer expecting no group learns the garbage's sequence and writes after it.
  const w = await s.boss.writeFinalGroup(group(batch, [final(jobs[0]!, 'succeeded', 1)], 1, []), 0)
  t.notOk(w.ok, 'a write expecting no group is refused')
  if (!w.ok) {
    t.same(w.after, [], 'no group stands there')
    t.equal(w.last, bad.seq, "but the chain's last sequence is the garbage's")
    const again = await s.boss.writeFinalGroup(group(batch, [final(jobs[0]!, 'succeeded', 1)], 1, []), w.last)
    t.ok(again.ok, 'the write after it lands')
  }
  t.equal((await s.reader.get(jobs[0]!.id))?.state, 'succeeded', 'and is read')
})

t.test("each part of a batch has its own chain; a group holding another part's job is garbage", async (t) => {
  const { s, logs, cluster } = await open(t)
  const { batch, jobs } = await batchOf(s, 40)
  const w0 = await s.boss.writeFinalGroup(group(batch, [final(jobs[0]!, 'succeeded', 1)], 1, []), 0)
  const w1 = await s.boss.writeFinalGroup({ ...group(batch, [final(jobs[33]!, 'succeeded', 1)], 1, []), part: 1 }, 0)
  t.ok(w0.ok && w1.ok, 'both parts start their chain expecting no group')
  t.equal((await s.reader.get(jobs[0]!.id))?.state, 'succeeded', 'a job of part 0 is found')
  t.equal((await s.reader.get(jobs[33]!.id))?.state, 'succeeded', 'a job of part 1 is found')
  t.equal((await s.reader.get(jobs[32]!.id))?.state, 'queued', 'a job of part 1 in no group is not')
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  // Part 1's subject, holding a job of part 0: not a group of part 1.
  const wrong = JSON.stringify({ ...group(batch, [final(jobs[1]!, 'failed', 1)], 1, []), part: 1 })
  await jetstream(nc).publish(`bosun.${cluster}.done.g.${batch}.1`, new TextEncoder().encode(wrong))
  t.equal((await s.reader.get(jobs[1]!.id))?.state, 'queued', "a final on another part's subject is not read")
  // Garbage as a part's last message hides the part's groups (the last one lists them) until a boss's
  // next group of the part names them again; the job reads as submitted meanwhile, nothing throws.
  t.equal((await s.reader.get(jobs[33]!.id))?.state, 'queued', "a part's garbage hides its groups from readers")
  t.ok(
    logs.lines.some((l) => l.msg === 'skipping garbage in the job store'),
    'the garbage is reported',
  )
})

t.test('a group stored in version 1 (whole records) is read as before, by readers and writers', async (t) => {
  const { s, cluster } = await open(t)
  const { batch, jobs } = await batchOf(s, 3)
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const v1 = group(batch, [final(jobs[0]!, 'succeeded', 1), final(jobs[1]!, 'failed', 1)], 1, [])
  const stored = await jetstream(nc).publish(
    `bosun.${cluster}.done.g.${batch}.0`,
    new TextEncoder().encode(JSON.stringify(v1)),
  )
  t.same(
    [await s.reader.get(jobs[0]!.id), await s.reader.get(jobs[1]!.id)].map((j) => [j?.state, j?.result]),
    [
      ['succeeded', { by: 1 }],
      ['failed', { by: 1 }],
    ],
    'GET finds both finals',
  )
  const tail = await s.boss.finalsAfter(stored.seq - 1)
  t.same(tail.finals.map((f) => f.job.id).sort(), [jobs[0]!.id, jobs[1]!.id].sort(), "a takeover's read counts both")
  const w = await s.boss.writeFinalGroup(group(batch, [final(jobs[2]!, 'succeeded', 2)], 2, []), 0)
  t.notOk(w.ok, 'a version-2 write expecting no group is refused')
  if (!w.ok)
    t.same(
      w.after[0]?.group.finals.map((j) => j.id),
      [jobs[0]!.id, jobs[1]!.id],
      'and told its finals',
    )
})
