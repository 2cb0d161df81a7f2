/**
 * What the boss writes into job records, on the bench: a final record too large for the store is
 * cut by bytes and ends the job failed (never retried forever); malformed or stale results never
 * reach a record; a predecessor's final record is never overwritten by an older view.
 */
import t from 'tap'
import { jobShapeProblem } from '../../jobs/store-codec.js'
import { doneMask, emptyState, parseJobId } from '../../jobs/streams/index.js'
import { bench, FakeWorker, oneJobRunning, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

t.test('a failure too large for the store ends the job failed with a clear code, written once', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  b.store.maxBytes = 64 * 1024
  const job = newJob({ payload: 'p'.repeat(60 * 1024) })
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(job.id), { what: 'running' })
  w1.finish(job.id, { ok: false, error: { message: '€'.repeat(4000), code: 'E_USER' } }) // 12 KB of multi-byte text
  const reply = await w1.deliver(term)
  t.same(reply.acked, [job.id], 'acknowledged')
  const rec = b.store.current(job.id)!
  t.equal(rec.state, 'failed')
  t.ok(Buffer.byteLength(JSON.stringify(rec)) <= b.store.maxBytes, 'the record fits')
  t.equal(jobShapeProblem(rec), null, 'and is a valid job')
  t.ok(rec.error!.message.length < 4000, 'its message was cut')
  const calls = b.store.writeCalls
  await new Promise((r) => setTimeout(r, 300))
  t.equal(b.store.writeCalls, calls, 'no write keeps being retried')
  t.same(
    b.finished.map((j) => j.state),
    ['failed'],
  )
})

t.test(
  'a result too large for the record drops the result and fails the job with BOSUN_ERR_RECORD_TOO_LARGE',
  async (t) => {
    const w1 = new FakeWorker('w1')
    const b = bench(w1)
    b.store.maxBytes = 32 * 1024
    const job = newJob({ payload: 'x'.repeat(20 * 1024) })
    b.store.put(job)
    const term = b.term(1)
    t.teardown(() => term.stop())
    await term.start()
    await waitFor(() => w1.starts.includes(job.id), { what: 'running' })
    w1.finish(job.id, { ok: true, result: 'r'.repeat(20 * 1024) })
    await w1.deliver(term)
    const rec = b.store.current(job.id)!
    t.equal(rec.state, 'failed')
    t.equal(rec.error?.code, 'BOSUN_ERR_RECORD_TOO_LARGE')
    t.notOk('result' in rec, 'the result is not stored')
  },
)

t.test('malformed results never reach a record; a stale attempt on a queued job is not applied', async (t) => {
  const w1 = new FakeWorker('w1')
  w1.capacity = 0
  const b = bench(w1)
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => term.status().queued === 1, { what: 'queued' })
  const base = { jobId: job.id, epoch: 1, worker: 'w1', startedAt: new Date().toISOString() }
  const reply = await term.onResults({
    results: [
      { ...base, attempt: 1, finishedAt: 0, outcome: { ok: true, result: 1 } },
      { ...base, attempt: 1, finishedAt: new Date().toISOString(), outcome: { ok: false, error: 'boom' } },
      { ...base, attempt: 1e15, finishedAt: new Date().toISOString(), outcome: { ok: true, result: 2 } },
    ],
  })
  t.same(reply.acked, [job.id], 'only the well-formed one is answered: obsolete (attempt 1e15 was never started)')
  const rec = b.store.current(job.id)!
  t.equal(rec.state, 'queued', 'nothing applied')
  t.equal(rec.attempts, 0)
  t.equal(jobShapeProblem(rec), null, 'the record still decodes')
  await t.rejects(term.onResults({ results: 'all done' }), { code: 'BOSUN_ERR_BAD_MESSAGE' })
})

t.test('a final record written by the previous boss after we read the job is kept, not overwritten', async (t) => {
  const w1 = new FakeWorker('w1')
  const w2 = new FakeWorker('w2')
  const b = bench(w1, w2)
  const job = newJob()
  const running = {
    ...job,
    state: 'running' as const,
    attempts: 1,
    worker: 'w1',
    epoch: 1,
    startedAt: new Date().toISOString(),
  }
  b.store.put(running)
  w1.running.set(job.id, { attempt: 1, epoch: 1, startedAt: running.startedAt })
  let open!: () => void
  b.store.gate = new Promise<void>((r) => (open = r)) // our adoption write is in flight...
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await new Promise((r) => setTimeout(r, 20))
  // ...when the old boss's final record and done mask land (the watch does not show state writes).
  const batch = parseJobId(job.id)!.batch
  b.store.finals.set(job.id, {
    ...running,
    state: 'succeeded',
    result: 'by epoch 1',
    finishedAt: new Date().toISOString(),
  })
  b.store.writeRaw(batch, { ...emptyState(batch, 1, 1), done: doneMask([0], 1) })
  w1.running.delete(job.id)
  b.store.gate = undefined
  open()
  await waitFor(() => term.status().running === 0 && term.status().queued === 0, {
    what: 'the job dropped as finished',
  })
  const rec = b.store.current(job.id)!
  t.equal(rec.state, 'succeeded', "the predecessor's result stands")
  t.equal(rec.result, 'by epoch 1')
  await new Promise((r) => setTimeout(r, 200))
  t.same([...w1.starts, ...w2.starts], [], 'and it is not run again')
})

t.test("the boss's memory follows the unfinished work: finished jobs and closed batches leave it", async (t) => {
  const w1 = new FakeWorker('w1', 64)
  const b = bench(w1)
  const jobs = Array.from({ length: 200 }, () => newJob())
  for (const j of jobs) b.store.put(j)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.running.size === 64, { what: 'a first wave running' })
  await waitFor(
    async () => {
      for (const id of [...w1.running.keys()]) w1.finish(id)
      if (w1.held.size > 0) await w1.deliver(term)
      return jobs.every((j) => b.store.current(j.id)?.state === 'succeeded')
    },
    { intervalMs: 5, what: 'all succeeded' },
  )
  await waitFor(() => b.store.batches.size === 0, { what: 'every batch closed' })
  const internals = term as unknown as { ctx: { table: { size: number }; book: { size: number } } }
  t.equal(internals.ctx.table.size, 0, 'no finished job is kept in the table')
  t.equal(internals.ctx.book.size, 0, 'no closed batch is kept in the book')
  t.equal(b.store.indexed.length, 200, 'every finished job is in the listing index once')
})

t.test(
  'a result sent again while its first delivery is being written is acknowledged only after that write',
  async (t) => {
    const { w1, b, job, term } = await oneJobRunning(t)
    const result = w1.finish(job.id)
    let open!: () => void
    b.store.gate = new Promise<void>((r) => (open = r)) // the final record's write is in flight...
    const first = term.onResults({ results: [result] })
    await new Promise((r) => setTimeout(r, 20))
    // ...when the worker sends the result again (its first request timed out, or several are in flight).
    const again = term.onResults({ results: [result] })
    const early = await Promise.race([
      again.then((r) => r.acked),
      new Promise((r) => setTimeout(() => r('pending'), 100)),
    ])
    t.equal(early, 'pending', 'not acknowledged while the final record is not durable')
    b.store.gate = undefined
    open()
    t.same((await again).acked, [job.id], 'acknowledged once it is')
    t.same((await first).acked, [job.id])
    t.equal(b.store.current(job.id)!.state, 'succeeded')
  },
)
