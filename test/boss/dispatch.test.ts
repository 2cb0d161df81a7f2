/**
 * Dispatching on the bench: unreachable or bogus workers do not soak up jobs, a dispatch that was
 * never sent is put back at once, a cancelled job is never dispatched again, a 30-day delay does
 * not spin the boss, cancelled delayed jobs do not count as queued, and a dispatch a worker lost is
 * put back by reconcile and told as job.redispatched.
 */
import t from 'tap'
import { bench, FakeWorker, oneJobRunning, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'
import { parseJobId } from '../../jobs/streams/index.js'

t.test(
  'a registered worker with no NATS subscription is backed off, not retried in a hot loop; its jobs go elsewhere',
  async (t) => {
    const bogus = new FakeWorker('bogus', 4)
    const good = new FakeWorker('good', 4)
    const b = bench(bogus, good)
    good.mode = 'gone' // only the bogus one is up at first... then the good one appears
    bogus.mode = 'gone'
    const job = newJob()
    b.store.put(job)
    const term = b.term(1)
    t.teardown(() => term.stop())
    let requests = 0
    const request = b.transport.request.bind(b.transport)
    b.transport.request = async (address, type, body, opts) => {
      if (type === 'worker.dispatch') requests++
      return request(address, type, body, opts)
    }
    await term.start()
    await new Promise((r) => setTimeout(r, 500))
    t.ok(requests <= 8, `dispatches to unreachable workers back off (${requests} in 500 ms)`)
    good.mode = 'ok'
    await waitFor(() => good.starts.includes(job.id), { timeoutMs: 5000, what: 'the job on the good worker' })
    t.pass('it ran on the reachable worker')
  },
)

t.test('a bogus registration advertising a huge capacity is capped', async (t) => {
  const w = new FakeWorker('w', 1_000_000)
  const b = bench(w)
  w.capacity = 1_000_000
  for (let i = 0; i < 1100; i++) b.store.put(newJob())
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.starts.length >= 1024, { what: 'dispatches up to the cap' })
  await new Promise((r) => setTimeout(r, 50))
  t.equal(w.starts.length, 1024, 'no more than 1024 jobs on one worker')
})

t.test('jobs held by a registered worker that stays unreachable are requeued after the grace', async (t) => {
  const w1 = new FakeWorker('w1')
  const w2 = new FakeWorker('w2')
  w2.capacity = 0
  const b = bench(w1, w2)
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(job.id), { what: 'dispatched to w1' })
  w1.mode = 'gone' // its NATS subscription is gone, its ZooKeeper registration stays
  w2.capacity = 4
  b.registry.join(w2)
  await waitFor(() => w2.starts.includes(job.id), { timeoutMs: 5000, what: 'requeued to w2' })
  t.pass('an unreachable holder does not keep its jobs running forever')
})

t.test('a dispatch that was never sent (NATS not connected) is put back at once', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const term = b.term(1, { settings: { reconcileIntervalMs: 60_000 } })
  t.teardown(() => term.stop())
  await term.start()
  b.transport.disconnected = true
  const job = newJob()
  b.store.put(job)
  await new Promise((r) => setTimeout(r, 30))
  b.transport.disconnected = false
  await waitFor(() => w1.starts.includes(job.id), {
    timeoutMs: 2000,
    what: 'dispatched after the reconnect (no reconcile runs in this test)',
  })
  t.pass()
})

t.test('a cancelled running job whose worker dies ends cancelled and is never run again', async (t) => {
  const w1 = new FakeWorker('w1')
  const w2 = new FakeWorker('w2')
  w2.capacity = 0
  const b = bench(w1, w2)
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(job.id), { what: 'running on w1' })
  w1.mode = 'silent' // SIGSTOPped: it cannot abort
  const answer = await term.onCancel(job.id)
  t.equal(answer?.state, 'running', 'a running job is cancelled by its worker')
  t.equal(b.store.current(job.id)!.cancelRequested, true, 'the request is durable')
  w2.capacity = 4
  b.registry.join(w2)
  w1.mode = 'gone'
  b.registry.leave('w1') // kill -9
  await waitFor(() => b.store.current(job.id)!.state === 'cancelled', { what: 'cancelled' })
  await new Promise((r) => setTimeout(r, 100))
  t.same(w2.starts, [], 'not run again elsewhere')
  t.same(
    b.finished.map((j) => j.state),
    ['cancelled'],
  )
})

t.test('a cancelled job handed back on shutdown ends cancelled', async (t) => {
  const { w1, b, job, term } = await oneJobRunning(t)
  await term.onCancel(job.id)
  w1.finish(job.id, { ok: false, error: { message: 'shutdown' }, handedBack: true })
  await w1.deliver(term)
  t.equal(b.store.current(job.id)!.state, 'cancelled')
  t.same(w1.starts, [job.id], 'never dispatched again')
})

t.test('a job delayed 30 days does not make the boss spin', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  b.store.put(newJob({ runAt: new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString() }))
  const warnings: string[] = []
  const onWarning = (w: Error) => warnings.push(w.name)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  let pumps = 0
  const immediate = global.setImmediate
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  ;(global as { setImmediate: unknown }).setImmediate = (fn: () => void) => {
    pumps++
    return immediate(fn)
  }
  await new Promise((r) => setTimeout(r, 300))
  global.setImmediate = immediate
  t.notOk(warnings.includes('TimeoutOverflowWarning'), 'no TimeoutOverflowWarning')
  t.ok(pumps < 20, `the boss is idle (${pumps} wake-ups in 300 ms)`)
  t.same(w1.starts, [], 'and the job waits')
})

t.test('cancelled delayed jobs do not count as queued (no spurious backpressure)', async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const jobs = Array.from({ length: 50 }, () => newJob({ runAt: new Date(Date.now() + 3600_000).toISOString() }))
  for (const j of jobs) b.store.put(j)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => term.status().queued === 50, { what: '50 queued' })
  for (const j of jobs) await term.onCancel(j.id)
  t.equal(term.status().queued, 0, 'none counted once cancelled')
})

t.test('"finished" is announced only after the durable write', async (t) => {
  const { w1, b, job, term } = await oneJobRunning(t)
  let open!: () => void
  b.store.gate = new Promise<void>((r) => (open = r))
  w1.finish(job.id)
  const delivering = w1.deliver(term)
  await new Promise((r) => setTimeout(r, 50))
  t.same(b.finished, [], 'not announced while the write is held')
  t.equal(w1.held.size, 1, 'not acknowledged either')
  b.store.gate = undefined
  open()
  await delivering
  t.same(
    b.finished.map((j) => j.state),
    ['succeeded'],
    'announced after',
  )
  t.equal(w1.held.size, 0)
})

t.test(
  '"finished" is published and the result acknowledged once the final record is durable, before the batch is closed',
  async (t) => {
    const { w1, b, job, term } = await oneJobRunning(t)
    let open!: () => void
    b.store.closeGate = new Promise<void>((r) => (open = r))
    const batch = parseJobId(job.id)!.batch
    w1.finish(job.id)
    await w1.deliver(term)
    t.equal(b.store.current(job.id)?.state, 'succeeded', 'the final record is stored')
    t.equal(w1.held.size, 0, 'the result is acknowledged while the close is still held')
    await waitFor(() => b.finished.length === 1, { what: 'published while the close is held' })
    t.equal(b.finished[0]!.state, 'succeeded')
    t.ok(b.store.batches.has(batch), 'the batch is not closed yet')
    b.store.closeGate = undefined
    open()
    await waitFor(() => !b.store.batches.has(batch), { what: 'the batch closed' })
    t.equal(b.finished.length, 1, 'published once')
  },
)

t.test('a job whose worker is lost too often fails — announced only after that final write', async (t) => {
  const b = bench()
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  for (let i = 1; i <= 5; i++) {
    const w = new FakeWorker(`w${i}`)
    b.transport.add(w)
    b.registry.join(w)
    await waitFor(() => w.starts.includes(job.id), { what: `running on w${i}` })
    await waitFor(() => b.store.current(job.id)!.worker === w.id, { what: 'its running state written' })
    let open: (() => void) | undefined
    if (i === 5) b.store.gate = new Promise<void>((r) => (open = r))
    w.mode = 'gone'
    b.registry.leave(w.id)
    if (open) {
      await new Promise((r) => setTimeout(r, 100))
      t.same(b.finished, [], 'not announced while its final write is held')
      b.store.gate = undefined
      open()
    }
  }
  await waitFor(() => b.finished.length === 1, { what: 'announced' })
  t.equal(b.store.current(job.id)!.state, 'failed')
  t.equal(b.store.current(job.id)!.error?.code, 'BOSUN_ERR_WORKER_LOST')
})

t.test(
  'the boss never dispatches to its own registration (it may linger in the cache after it withdrew it)',
  async (t) => {
    const self = new FakeWorker('boss')
    const other = new FakeWorker('w1')
    const b = bench(self, other)
    const job = newJob()
    b.store.put(job)
    const term = b.term(1)
    t.teardown(() => term.stop())
    await term.start()
    await waitFor(() => other.starts.includes(job.id), { what: 'dispatched to w1' })
    t.equal(self.dispatchRequests, 0, 'nothing sent to itself')
  },
)

t.test(
  'a dispatch carries what a worker runs the job with, not the boss record (no history, key, error)',
  async (t) => {
    const w1 = new FakeWorker('w1', 4)
    const b = bench(w1)
    const job = newJob({
      idempotencyKey: 'k-1',
      callbackUrl: 'http://127.0.0.1:1/hook',
      concurrencyKey: 'tenant-a',
      maxAttempts: 3,
      history: [
        {
          run: 0,
          attempt: 1,
          worker: 'gone',
          epoch: 1,
          startedAt: new Date().toISOString(),
          finishedAt: new Date().toISOString(),
          outcome: 'failed',
          error: { message: 'boom' },
        },
      ],
    })
    b.store.put(job)
    const term = b.term(2)
    t.teardown(() => term.stop())
    await term.start()
    await waitFor(() => w1.received.length === 1, { what: 'the dispatch' })
    const sent = w1.received[0]!
    t.same(
      Object.keys(sent).sort(),
      ['attempts', 'function', 'id', 'payload', 'startedAt', 'timeoutMs'],
      'only the fields a worker reads',
    )
    t.equal(sent.id, job.id)
    t.same(sent.payload, job.payload, 'with its payload')
  },
)

t.test(
  'a dispatch its worker lost, found by reconcile in a term, is put back and told as job.redispatched',
  async (t) => {
    const { w1, b, job } = await oneJobRunning(t)
    w1.running.delete(job.id) // the worker lost it (its inventory no longer names it)
    await waitFor(() => w1.starts.filter((id) => id === job.id).length === 2, {
      what: 'the job dispatched again after reconcile',
      timeoutMs: 5000,
    })
    await waitFor(() => b.redispatched.length > 0, { what: 'job.redispatched told' })
    t.same(b.redispatched, [{ worker: 'w1', jobs: 1, reason: 'dispatch_lost' }], 'one event, with the metric reason')
  },
)
