/**
 * A job's attempt history, on the bench: every ended attempt is in the final record (outcome,
 * worker, epoch, times, error); attempts that did not end the job are kept in the ATTEMPTS log
 * before the state record counts them, so a new boss still writes them into the final record.
 */
import t from 'tap'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

const boom = (n: number) => ({ ok: false as const, error: { message: `boom ${n}`, code: 'E_USER' } })

t.test('a job that fails twice, then succeeds, keeps all three attempts in its final record', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob({ maxAttempts: 3 })
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  for (let attempt = 1; attempt <= 3; attempt++) {
    await waitFor(() => w1.running.get(job.id)?.attempt === attempt, { what: `attempt ${attempt}`, timeoutMs: 5000 })
    w1.finish(job.id, attempt < 3 ? boom(attempt) : { ok: true, result: 'fine' })
    await w1.deliver(term)
  }
  await waitFor(() => b.store.current(job.id)?.state === 'succeeded', { what: 'succeeded' })
  const rec = b.store.current(job.id)!
  t.same(
    rec.history!.map((e) => [e.run, e.attempt, e.outcome, e.worker, e.epoch, e.error?.message]),
    [
      [0, 1, 'failed', 'w1', 1, 'boom 1'],
      [0, 2, 'failed', 'w1', 1, 'boom 2'],
      [0, 3, 'succeeded', 'w1', 1, undefined],
    ],
  )
  for (const e of rec.history!) {
    t.ok(e.startedAt && e.finishedAt >= e.startedAt, 'start and end times')
    t.type(e.durationMs, 'number')
  }
  t.equal(b.store.attemptLog.get(job.id)?.length, 2, 'the two retried attempts were logged, the last one was not')
  t.notOk('logged' in rec, 'the internal counter is not in the final record')
})

t.test('a new boss writes its predecessor’s logged attempts into the final record', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob({ maxAttempts: 2 })
  b.store.put(job)
  const first = b.term(1)
  await first.start()
  await waitFor(() => w1.running.get(job.id)?.attempt === 1, { what: 'attempt 1' })
  w1.finish(job.id, boom(1))
  await w1.deliver(first)
  await waitFor(() => b.store.current(job.id)?.state === 'queued' && b.store.current(job.id)?.attempts === 1, {
    what: 'queued for a retry',
  })
  first.stop()
  t.equal(b.store.current(job.id)?.logged, 1, 'the state record counts the logged entry')

  const second = b.term(2)
  t.teardown(() => second.stop())
  await second.start()
  await waitFor(() => w1.running.get(job.id)?.attempt === 2, { what: 'attempt 2', timeoutMs: 5000 })
  w1.finish(job.id, boom(2))
  await w1.deliver(second)
  await waitFor(() => b.store.current(job.id)?.state === 'failed', { what: 'failed' })
  const rec = b.store.current(job.id)!
  t.same(
    rec.history!.map((e) => [e.attempt, e.outcome, e.epoch, e.error?.message]),
    [
      [1, 'failed', 1, 'boom 1'],
      [2, 'failed', 2, 'boom 2'],
    ],
  )
})

t.test('a lost worker is an entry of its own (not an attempt of the function)', async (t) => {
  const w1 = new FakeWorker('w1')
  const w2 = new FakeWorker('w2')
  const b = bench(w1)
  b.transport.add(w2)
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.running.has(job.id), { what: 'running on w1' })
  b.registry.join(w2)
  w1.mode = 'gone'
  b.registry.leave('w1') // kill -9
  await waitFor(() => w2.running.has(job.id), { what: 'running on w2', timeoutMs: 5000 })
  w2.finish(job.id, { ok: true, result: 1 })
  await w2.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'succeeded', { what: 'succeeded' })
  const rec = b.store.current(job.id)!
  t.same(
    rec.history!.map((e) => [e.attempt, e.outcome, e.worker, e.error?.code]),
    [
      [1, 'lost', 'w1', 'BOSUN_ERR_WORKER_LOST'],
      [1, 'succeeded', 'w2', undefined],
    ],
  )
  t.equal(rec.attempts, 1, 'the lost attempt is not counted')
})
