/**
 * A final record can stand in DONE while its batch's state record still shows the job unfinished:
 * a boss writes a job's final record from a worker's result, then its done mask (or the batch's
 * close), and can die in between. The worker keeps the result until that mask is durable, so a new
 * boss normally adopts it from the inventory — but if the worker died too (a whole-cluster restart),
 * the new boss must still find the final record and never run the job again. Bosses record how far
 * DONE is settled (a checkpoint); a new boss reads the records written after it.
 */
import t from 'tap'
import { parseJobId } from '../../jobs/streams/index.js'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

const now = () => new Date().toISOString()

t.test('a running job whose final record stands is not run again when its worker is gone too', async (t) => {
  const w2 = new FakeWorker('w2')
  const b = bench(w2)
  const job = newJob({ maxAttempts: 3 })
  // Epoch 1 dispatched it to w1 and recorded it running; w1's result became the final record; then
  // the boss and w1 both died before the done mask was written.
  b.store.put({ ...job, state: 'running', attempts: 1, worker: 'w1', startedAt: now(), epoch: 1 })
  b.store.putFinalOnly({ ...job, state: 'succeeded', attempts: 1, result: 'first run', finishedAt: now(), epoch: 1 })
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  const batch = parseJobId(job.id)!.batch
  await waitFor(() => !b.store.batches.has(batch), { what: 'the batch closed' })
  await new Promise((r) => setTimeout(r, 200)) // reconcile runs a few times meanwhile
  t.same(w2.starts, [], 'never dispatched again')
  t.equal(b.store.current(job.id)!.result, 'first run', 'the first final record stands')
  t.same(
    b.finished.map((j) => j.id),
    [job.id],
    'announced once',
  )
  await waitFor(() => b.store.indexed.some((e) => e.id === job.id), { what: 'the job in the listing index' })
  t.same(
    b.store.indexed.filter((e) => e.id === job.id).map((e) => e.state),
    ['succeeded'],
    'listed once, as succeeded: its predecessor died before indexing it',
  )
})

t.test(
  'a final record whose batch closed but whose index entry was never written is indexed by the next boss, once',
  async (t) => {
    const b = bench(new FakeWorker('w1'))
    const job = newJob()
    const rerun = newJob()
    // Epoch 1 wrote both final records and closed their batches, then died before the index write
    // (settling writes the close and the index entry side by side); the rerun is a retried job's run 1.
    b.store.putFinalOnly({ ...job, state: 'failed', attempts: 1, error: { message: 'x' }, finishedAt: now(), epoch: 1 })
    b.store.putFinalOnly({ ...rerun, run: 1, state: 'succeeded', attempts: 1, finishedAt: now(), epoch: 1 })
    const term = b.term(2)
    t.teardown(() => term.stop())
    await term.start()
    await waitFor(() => b.store.indexed.length >= 2, { what: 'both in the listing index' })
    await new Promise((r) => setTimeout(r, 50))
    t.same(
      b.store.indexed.map((e) => [e.id, e.state, e.run]).sort(),
      [
        [job.id, 'failed', 0],
        [rerun.id, 'succeeded', 1],
      ].sort(),
      'each indexed once, under its run',
    )
  },
)

t.test('a final record its predecessor did index is not indexed again (no job listed twice)', async (t) => {
  const b = bench(new FakeWorker('w1'))
  const job = newJob()
  b.store.putFinalOnly({ ...job, state: 'succeeded', attempts: 1, finishedAt: now(), epoch: 1 })
  await b.store.index([{ id: job.id, state: 'succeeded', fn: job.function }])
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await new Promise((r) => setTimeout(r, 100))
  t.equal(b.store.indexed.filter((e) => e.id === job.id).length, 1, 'one entry')
})

t.test(
  'a job whose running state was never written (short job) and whose final record stands is not run again',
  async (t) => {
    const w2 = new FakeWorker('w2')
    const b = bench(w2)
    const job = newJob()
    // The running write is deferred for short jobs: the state record still says queued.
    b.store.put(job)
    b.store.putFinalOnly({
      ...job,
      state: 'failed',
      attempts: 1,
      error: { message: 'boom' },
      finishedAt: now(),
      epoch: 1,
    })
    const term = b.term(2)
    t.teardown(() => term.stop())
    await term.start()
    const batch = parseJobId(job.id)!.batch
    await waitFor(() => !b.store.batches.has(batch), { what: 'the batch closed' })
    await new Promise((r) => setTimeout(r, 100))
    t.same(w2.starts, [], 'never dispatched')
    t.equal(b.store.current(job.id)!.state, 'failed')
  },
)

t.test('a boss records how far DONE is settled; the next boss reads only the final records after it', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const jobs = [newJob(), newJob(), newJob()]
  for (const j of jobs) b.store.put(j)
  const first = b.term(1, { settings: { checkpointIntervalMs: 20 } })
  await first.start()
  await waitFor(() => w1.starts.length === 3, { what: 'all three dispatched' })
  for (const j of jobs) w1.finish(j.id)
  await w1.deliver(first)
  const last = Math.max(...jobs.map((j) => b.store.finalSeq(j.id)!))
  await waitFor(() => (b.store.checkpoint?.doneSeq ?? 0) >= last, { what: 'the checkpoint covers the three' })
  t.equal(b.store.checkpoint!.epoch, 1)
  first.stop()
  const second = b.term(2)
  t.teardown(() => second.stop())
  await second.start()
  t.ok(b.store.tailReads.length > 0 && b.store.tailReads.at(-1)! >= last, 'the new boss read DONE after the checkpoint')
})

t.test('a checkpoint never passes a final record whose done mask is not durable', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const slow = newJob()
  const quick = newJob()
  b.store.put(slow)
  b.store.put(quick)
  const term = b.term(1, { settings: { checkpointIntervalMs: 10 } })
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.length === 2, { what: 'both dispatched' })
  // The slow job's batch cannot close (the store holds closes): its final record is not settled.
  let openGate!: () => void
  b.store.closeGate = new Promise((r) => (openGate = r))
  w1.finish(slow.id)
  const slowDelivered = w1.deliver(term)
  await waitFor(() => b.store.finalSeq(slow.id) !== undefined, { what: 'the slow final record written' })
  b.store.closeGate = undefined
  const quickResult = w1.finish(quick.id)
  await term.onResults({ results: [quickResult] })
  await new Promise((r) => setTimeout(r, 100))
  t.ok(
    (b.store.checkpoint?.doneSeq ?? 0) < b.store.finalSeq(slow.id)!,
    'the checkpoint stays below the unsettled record',
  )
  openGate()
  await slowDelivered
  await waitFor(() => (b.store.checkpoint?.doneSeq ?? 0) >= b.store.finalSeq(quick.id)!, {
    what: 'the checkpoint moves on once it is settled',
  })
})

for (const leads of [true, false]) {
  t.test(
    leads
      ? 'a checkpoint claiming an epoch no boss has had is overwritten while ZooKeeper confirms our leadership'
      : 'a checkpoint written by a newer epoch stops the term',
    async (t) => {
      const w1 = new FakeWorker('w1')
      const b = bench(w1)
      const job = newJob()
      b.store.put(job)
      const term = b.term(1, { settings: { checkpointIntervalMs: 10 }, confirmLeadership: leads })
      t.teardown(() => term.stop())
      await term.start()
      await waitFor(() => w1.starts.length === 1, { what: 'dispatched' })
      b.store.writeCheckpointRaw({ v: 1, epoch: 99, doneSeq: 0 })
      w1.finish(job.id)
      await w1.deliver(term)
      if (leads) {
        await waitFor(() => b.store.checkpoint?.epoch === 1, { what: 'our checkpoint written over it' })
        t.ok(term.active, 'still acting')
        t.same(b.fenced, [])
      } else {
        await waitFor(() => b.fenced.length === 1, { what: 'fenced' })
        t.equal(b.store.checkpoint?.epoch, 99, 'the newer epoch’s checkpoint stands')
        t.notOk(term.active)
      }
    },
  )
}
