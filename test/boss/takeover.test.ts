/**
 * A new boss's takeover on the bench: results, adoptions and cancels that arrive while it is still
 * reading the store are all correct; a worker absent from the registry is asked on NATS before its
 * job is requeued; adopted records carry the new epoch.
 */
import t from 'tap'
import { emptyState, parseJobId } from '../../jobs/streams/index.js'
import { bench, FakeWorker, jobId, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

t.test('a result for a job the new boss has not read yet is not acknowledged until it is durable', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  // The previous boss (epoch 1) dispatched the job; its running state was never written (short job).
  const job = newJob()
  b.store.put(job)
  w1.running.set(job.id, { attempt: 1, epoch: 1, startedAt: new Date().toISOString() })
  w1.finish(job.id, { ok: true, result: 'done' })
  b.store.holdLoad = true // the store is slow to deliver the job's record to the new boss
  const term = b.term(2)
  t.teardown(() => term.stop())
  const started = term.start()
  await waitFor(() => term.active, { what: 'the term dispatching while the store loads' })
  const early = w1.deliver(term)
  await new Promise((r) => setTimeout(r, 50))
  t.equal(w1.held.size, 1, 'not acknowledged while the record is unread')
  b.store.releaseLoad()
  const reply = await early
  await started
  t.same(reply.acked, [job.id], 'acknowledged once applied')
  t.equal(b.store.current(job.id)!.state, 'succeeded', 'the durable record holds the result')
  t.same(b.store.current(job.id)!.result, 'done')
  t.same(w1.starts, [], 'and the job was not run again')
})

t.test('a result for a record that does not exist is acknowledged once the whole store was read', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  b.store.holdLoad = true
  const term = b.term(2)
  t.teardown(() => term.stop())
  void term.start()
  const ghost = newJob()
  w1.running.set(ghost.id, { attempt: 1, epoch: 1, startedAt: new Date().toISOString() })
  w1.finish(ghost.id)
  await waitFor(() => term.active, { what: 'the term dispatching while the store loads' })
  const pending = w1.deliver(term)
  b.store.releaseLoad()
  t.same((await pending).acked, [ghost.id], 'obsolete: purged or never stored')
})

t.test('a running record whose worker left the registry but answers on NATS is adopted, not requeued', async (t) => {
  const w1 = new FakeWorker('w1')
  const w2 = new FakeWorker('w2')
  const b = bench(w1, w2)
  const job = newJob()
  b.store.put({ ...job, state: 'running', attempts: 1, worker: 'w1', startedAt: new Date().toISOString(), epoch: 1 })
  w1.running.set(job.id, { attempt: 1, epoch: 1, startedAt: new Date().toISOString() })
  w1.starts.push(job.id)
  b.registry.leave('w1') // its znodes vanished (a stranger deleted them, or it is between two sessions)
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => b.store.current(job.id)!.epoch === 2, { what: 'the adoption written' })
  const rec = b.store.current(job.id)!
  t.equal(rec.state, 'running')
  t.equal(rec.worker, 'w1', 'still on w1')
  await new Promise((r) => setTimeout(r, 200)) // reconcile runs a few times meanwhile
  t.same(w2.starts, [], 'never dispatched to another worker')
  w1.finish(job.id)
  await w1.deliver(term)
  t.equal(b.store.current(job.id)!.state, 'succeeded')
})

t.test('a running record whose worker is gone from ZooKeeper and NATS is requeued and runs elsewhere', async (t) => {
  const w2 = new FakeWorker('w2')
  const b = bench(w2)
  const job = newJob()
  b.store.put({ ...job, state: 'running', attempts: 1, worker: 'w1', startedAt: new Date().toISOString(), epoch: 1 })
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w2.starts.includes(job.id), { what: 'the job re-run on w2' })
  t.equal(b.store.current(job.id)!.attempts, 1, 'the lost attempt was not counted')
})

t.test('running jobs of a worker that died with the previous boss are told as one job.redispatched', async (t) => {
  const w2 = new FakeWorker('w2')
  const b = bench(w2)
  const startedAt = new Date().toISOString()
  const jobs = [newJob(), newJob(), newJob()]
  for (const job of jobs) b.store.put({ ...job, state: 'running', attempts: 1, worker: 'w1', startedAt, epoch: 1 })
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => jobs.every((j) => w2.starts.includes(j.id)), { what: 'the jobs re-run on w2' })
  await waitFor(() => b.redispatched.length > 0, { what: 'job.redispatched told' })
  t.same(b.redispatched, [{ worker: 'w1', jobs: 3, reason: 'worker_died' }], 'one event, every job, why')
})

t.test('a running job its live worker does not know is told as a lost dispatch at takeover', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob()
  b.store.put({ ...job, state: 'running', attempts: 1, worker: 'w1', startedAt: new Date().toISOString(), epoch: 1 })
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(job.id), { what: 'the job dispatched again' })
  await waitFor(() => b.redispatched.length > 0, { what: 'job.redispatched told' })
  t.same(b.redispatched, [{ worker: 'w1', jobs: 1, reason: 'dispatch_lost' }])
})

t.test('adopted jobs are written with the new epoch at once, so the old boss cannot overwrite them', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const jobs = [newJob(), newJob(), newJob()]
  for (const j of jobs) {
    b.store.put({ ...j, state: 'running', attempts: 1, worker: 'w1', epoch: 1, startedAt: new Date().toISOString() })
    w1.running.set(j.id, { attempt: 1, epoch: 1, startedAt: new Date().toISOString() })
  }
  const batch = parseJobId(jobs[0]!.id)!.batch
  const oldRevision = b.store.batches.get(batch)!.state!.revision
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => jobs.every((j) => b.store.current(j.id)!.epoch === 2), {
    what: 'adoptions stamped with epoch 2',
  })
  // The old boss (epoch 1) still holds the revision it last wrote: its write is refused.
  await t.rejects(
    b.store.writeState(emptyState(batch, 1, 1), oldRevision),
    { code: 'BOSUN_ERR_STALE_EPOCH' },
    'a write of the old epoch is refused',
  )
})

t.test('a cancel arriving during the takeover, for a record not read yet, is honoured', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob()
  b.store.put(job)
  b.store.holdLoad = true
  const term = b.term(2)
  t.teardown(() => term.stop())
  void term.start()
  await waitFor(() => term.active, { what: 'the term dispatching while the store loads' })
  const cancelled = await term.onCancel(job.id)
  t.equal(cancelled?.state, 'cancelled', 'DELETE answers the cancelled job, not 404')
  b.store.releaseLoad()
  await waitFor(() => term.state === 'active', { what: 'load done' })
  await new Promise((r) => setTimeout(r, 100))
  t.same(w1.starts, [], 'the job never runs')
  t.equal(b.store.current(job.id)!.state, 'cancelled')
})

t.test('a cancel racing the watch right after the submit is honoured', async (t) => {
  const w1 = new FakeWorker('w1')
  w1.capacity = 0 // nothing can start: the job stays queued
  const b = bench(w1)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  const job = newJob()
  // Stored, but the boss's watch has not delivered it yet: written without notifying watchers.
  b.store.putSilently(job)
  const cancelled = await term.onCancel(job.id)
  t.equal(cancelled?.state, 'cancelled')
  t.equal(b.store.current(job.id)!.state, 'cancelled', 'durable')
  t.equal(await term.onCancel(jobId()), null, 'an unknown id is still unknown')
})
