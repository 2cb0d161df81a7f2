/**
 * What the boss makes of the control-flow errors functions throw (worker/function-kit.ts), on the
 * bench: UnrecoverableError fails the job at once whatever attempts are left; RetryLaterError
 * queues it again after its delay without using up an attempt.
 */
import t from 'tap'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

t.test('UnrecoverableError: failed now, with attempts left', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob({ maxAttempts: 5 })
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.running.has(job.id), { what: 'running' })
  w1.finish(job.id, { ok: false, error: { message: 'never', code: 'BOSUN_ERR_UNRECOVERABLE' } })
  await w1.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'failed', { what: 'failed' })
  t.match(b.store.current(job.id), { attempts: 1, error: { code: 'BOSUN_ERR_UNRECOVERABLE' } })
  await new Promise((r) => setTimeout(r, 100))
  t.same(w1.starts, [job.id], 'never retried')
})

t.test('RetryLaterError: again after its delay, the attempt not used up', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob({ maxAttempts: 1 })
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.running.has(job.id), { what: 'running' })
  const t0 = Date.now()
  w1.finish(job.id, { ok: false, error: { message: 'not yet', code: 'BOSUN_ERR_RETRY_LATER', retryInMs: 1200 } })
  await w1.deliver(term)
  const queued = b.store.current(job.id)!
  t.match(queued, { state: 'queued', attempts: 0 })
  t.ok(Date.parse(queued.runAt!) - t0 >= 1100, 'not before its delay')
  await waitFor(() => w1.running.get(job.id)?.attempt === 1, { what: 'run again', timeoutMs: 5000 })
  t.ok(Date.now() - t0 >= 1100, 'dispatched after the delay')
  t.equal(w1.starts.length, 2)
  w1.finish(job.id, { ok: true, result: 'done' })
  await w1.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'succeeded', { what: 'succeeded with its one attempt' })
  t.same(
    b.store.current(job.id)!.history!.map((e) => [e.attempt, e.outcome]),
    [
      [1, 'deferred'],
      [1, 'succeeded'],
    ],
  )
})

t.test('RetryLaterError: at least 1 s apart, and a cancel wins', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.running.has(job.id), { what: 'running' })
  const t0 = Date.now()
  w1.finish(job.id, { ok: false, error: { message: 'now', code: 'BOSUN_ERR_RETRY_LATER', retryInMs: 0 } })
  await w1.deliver(term)
  t.ok(Date.parse(b.store.current(job.id)!.runAt!) - t0 >= 990, 'clamped to 1 s')
  await term.onCancel(job.id)
  t.equal(b.store.current(job.id)!.state, 'cancelled')
})
