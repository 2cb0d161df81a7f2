/**
 * A closed batch's state subject keeps a tombstone, against a real nats-server: a batch state write is
 * a compare-and-set on its subject's last sequence, and a deposed boss's first write of a batch
 * expects "no record yet" (0). Were the successor's close to delete the subject's last record, that
 * held write would find the subject empty again and be stored (CI saw it once in
 * test/faults/boss-fence.test.ts). So a close that may race an older epoch leaves a tombstone of its
 * own epoch, removed an hour later (worker/boss/tombstones.ts).
 */
import t from 'tap'
import { monotonicFactory } from 'ulid'
import type { Job } from '../../jobs/model.js'
import { doneMask, emptyState, JobStreams, type SubmittedJob } from '../../jobs/streams/index.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { logger, natsConn } from './store-helpers.js'

const newBatchId = monotonicFactory()
const spec: SubmittedJob = { function: 'echo', payload: { n: 1 }, priority: 0, timeoutMs: 60_000, maxAttempts: 1 }

const nats = await startNats()
t.teardown(() => nats.close())

async function open(t: Parameters<typeof natsConn>[0]): Promise<JobStreams> {
  const nc = await natsConn(t, nats.url)
  return JobStreams.open({ nc, cluster: uniqueName('ts'), logger, retentionMs: 3_600_000 })
}

/** A batch of two jobs, both finished by the successor (epoch 3): final records written. */
async function finishedBatch(s: JobStreams): Promise<{ batch: string; submitSeq: number; ids: string[] }> {
  const plan = s.submitter.plan([spec, spec], newBatchId)
  await s.submitter.publish(plan, [spec, spec], new Date().toISOString())
  const open = (await s.boss.readBatch(plan.ids[0]!.slice(0, 26)))!
  for (const id of plan.ids) {
    const job = (await s.reader.get(id))!
    const final: Job = { ...job, state: 'succeeded', attempts: 1, finishedAt: new Date().toISOString(), epoch: 3 }
    await s.boss.writeFinal(final)
  }
  return { batch: open.batch, submitSeq: open.submitSeq, ids: plan.ids }
}

for (const successorWrote of [true, false]) {
  const how = successorWrote ? 'after writing its state' : 'without ever writing its state'
  t.test(`a deposed boss's first state write is refused after its successor closed the batch ${how}`, async (t) => {
    const s = await open(t)
    const b = await finishedBatch(s)
    let revision = 0
    if (successorWrote) {
      const w = await s.boss.writeState({ ...emptyState(b.batch, 2, 3), done: doneMask([0, 1], 2) }, 0)
      revision = w.ok ? w.revision : -1
      t.ok(revision > 0, 'the successor wrote the state record')
    }
    const tombstone = await s.boss.closeBatch(b.batch, b.submitSeq, revision, undefined, { epoch: 3, size: 2 })
    t.ok(tombstone > revision, `the close left a tombstone (seq ${tombstone})`)
    t.equal(await s.boss.readBatch(b.batch), null, 'the batch is closed')
    // The deposed boss (epoch 2) saw the batch before it was deposed and never saw a state record.
    await t.rejects(
      s.boss.writeState(emptyState(b.batch, 2, 2), 0),
      { code: 'BOSUN_ERR_STALE_EPOCH' },
      "the held write meets the successor's tombstone",
    )
    t.equal(await s.boss.readBatch(b.batch), null, 'and the batch stays closed')
    for (const id of b.ids) t.equal((await s.reader.get(id))?.state, 'succeeded', `${id} reads as its final record`)
  })
}

t.test('a takeover reads tombstones apart from open batches, and removing one is idempotent', async (t) => {
  const s = await open(t)
  const closed = await finishedBatch(s)
  const before = Date.now()
  const tombstone = await s.boss.closeBatch(closed.batch, closed.submitSeq, 0, undefined, { epoch: 3, size: 2 })
  // A close that stopped half-way (submit removed, state record left): the next boss closes it.
  const half = await finishedBatch(s)
  const w = await s.boss.writeState({ ...emptyState(half.batch, 2, 3), done: doneMask([0, 1], 2) }, 0)
  await s.boss.closeBatch(half.batch, half.submitSeq, 0)
  const plan = s.submitter.plan([spec], newBatchId)
  await s.submitter.publish(plan, [spec], new Date().toISOString())

  const batches: string[] = []
  const found: Array<{ batch: string; seq: number; storedAtMs: number; tombstone: boolean }> = []
  let done = false
  const stop = s.boss.watchBatches(
    (o) => batches.push(o.batch),
    () => (done = true),
    (c) => found.push(c),
  )
  t.teardown(stop)
  await waitFor(() => done, { what: 'initial load' })
  t.same(batches, [plan.ids[0]!.slice(0, 26)], 'only the open batch is delivered')
  const byBatch = new Map(found.map((c) => [c.batch, c]))
  t.equal(byBatch.get(closed.batch)?.tombstone, true, 'the tombstone is reported as one')
  t.equal(byBatch.get(closed.batch)?.seq, tombstone)
  t.ok((byBatch.get(closed.batch)?.storedAtMs ?? 0) >= before - 1000, 'with the time it was stored')
  t.equal(byBatch.get(half.batch)?.tombstone, false, "the half-closed batch's state record is reported to close")
  t.equal(byBatch.get(half.batch)?.seq, w.ok ? w.revision : -1)

  await s.boss.removeTombstone(tombstone)
  await s.boss.removeTombstone(tombstone)
  const again: string[] = []
  let done2 = false
  const stop2 = s.boss.watchBatches(
    () => undefined,
    () => (done2 = true),
    (c) => again.push(c.batch),
  )
  t.teardown(stop2)
  await waitFor(() => done2, { what: 'second initial load' })
  t.same(again, [half.batch], 'a removed tombstone is gone')
})
