/**
 * Flow limits on the bench (README "Limits"): a function's concurrency and a key's concurrency are
 * never exceeded, keys take turns, an override applies at once and lifts a declared limit, a rate
 * limit spaces starts, and a new boss counts the running jobs it inherits before it dispatches.
 */
import t from 'tap'
import { bench, FakeWorker, newJob, type Bench } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'
import type { BossTerm } from '../../worker/boss/term.js'
import type { Job } from '../../jobs/model.js'

/** Finish every job the workers run now, deliver the results, and wait until the boss knows. */
async function finishAll(term: BossTerm, ...workers: FakeWorker[]): Promise<string[]> {
  const done: string[] = []
  for (const w of workers) {
    for (const id of [...w.running.keys()]) {
      w.finish(id)
      done.push(id)
    }
    await w.deliver(term)
  }
  return done
}

const runningCount = (...ws: FakeWorker[]) => ws.reduce((n, w) => n + w.running.size, 0)

async function started(b: Bench, term: BossTerm, jobs: Job[]): Promise<void> {
  for (const j of jobs) b.store.put(j)
  await term.start()
}

t.test("a function's declared concurrency holds across many workers and slots", async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const w2 = new FakeWorker('w2', 8)
  w1.limits = w2.limits = { echo: { concurrency: 3 } }
  const b = bench(w1, w2)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await started(
    b,
    term,
    Array.from({ length: 20 }, () => newJob()),
  )
  let finished = 0
  let most = 0
  while (finished < 20) {
    await waitFor(() => runningCount(w1, w2) > 0, { what: 'something running' })
    await new Promise((r) => setTimeout(r, 20)) // let the pump fill what it may
    most = Math.max(most, runningCount(w1, w2))
    finished += (await finishAll(term, w1, w2)).length
  }
  t.equal(most, 3, 'at most 3 ran at once, and 3 did')
  t.equal(w1.starts.length + w2.starts.length, 20, 'each job started once')
})

t.test('per-key concurrency, and keys take turns (a big tenant does not starve a small one)', async (t) => {
  const w = new FakeWorker('w', 4)
  w.limits = { echo: { keyConcurrency: 1 } }
  const b = bench(w)
  const term = b.term(1)
  t.teardown(() => term.stop())
  const big = Array.from({ length: 30 }, () => newJob({ concurrencyKey: 'big' }))
  const small = Array.from({ length: 3 }, () => newJob({ concurrencyKey: 'small' }))
  const plain = Array.from({ length: 2 }, () => newJob())
  await started(b, term, [...big, ...small, ...plain])
  const keyOf = new Map([...big, ...small, ...plain].map((j) => [j.id, j.concurrencyKey ?? '-']))
  const order: string[] = []
  while (order.length < 35) {
    await waitFor(() => w.running.size > 0, { what: 'something running' })
    await new Promise((r) => setTimeout(r, 10))
    const keys = [...w.running.keys()].map((id) => keyOf.get(id)!)
    t.ok(keys.filter((k) => k === 'big').length <= 1 && keys.filter((k) => k === 'small').length <= 1, 'one per key')
    order.push(...(await finishAll(term, w)).map((id) => keyOf.get(id)!))
  }
  const lastSmall = order.lastIndexOf('small')
  t.ok(lastSmall < 12, `the small tenant's 3 jobs ran among the first rounds (last at ${lastSmall} of 35)`)
  t.equal(order.filter((k) => k === 'big').length, 30, 'every big job ran')
})

t.test('an override applies at once and can lift a declared limit', async (t) => {
  const w = new FakeWorker('w', 10)
  w.limits = { echo: { concurrency: 1 } }
  const b = bench(w)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await started(
    b,
    term,
    Array.from({ length: 10 }, () => newJob()),
  )
  await waitFor(() => w.running.size === 1, { what: 'one running' })
  await new Promise((r) => setTimeout(r, 30))
  t.equal(w.running.size, 1, 'declared concurrency 1')
  b.limits.set('echo', { concurrency: 4 })
  await waitFor(() => w.running.size === 4, { what: 'four running after the override' })
  b.limits.set('echo', { concurrency: null })
  await waitFor(() => w.running.size === 10, { what: 'all running once the limit is lifted' })
  t.pass('override raised, then lifted the limit')
  t.same(term.status().functions, { echo: 10 }, 'the status counts running jobs per function')
})

t.test('a rate limit spaces starts over its sliding window', async (t) => {
  const w = new FakeWorker('w', 50)
  const b = bench(w)
  b.limits.set('echo', { rateLimit: { max: 3, perMs: 300 } })
  // The first window write is slow: the boss's spacing must not depend on how long writes take.
  b.rates.writeGate = new Promise((resolve) => setTimeout(resolve, 40))
  const term = b.term(1)
  t.teardown(() => term.stop())
  await started(
    b,
    term,
    Array.from({ length: 7 }, () => newJob()),
  )
  await waitFor(() => w.starts.length === 7, { timeoutMs: 3000, what: 'seven starts' })
  // When the boss started each, as dispatched (the fake's receipt lags by the rate window's write).
  const at = w.starts.map((id) => w.dispatchedAt.get(id)!)
  for (let i = 3; i < at.length; i++)
    t.ok(at[i]! - at[i - 3]! >= 299, `start ${i + 1} is ≥ 300 ms after start ${i - 2} (${at[i]! - at[i - 3]!} ms)`)
  t.ok(at[2]! - at[0]! < 250, 'the first three started at once')
})

t.test('a new boss counts the running jobs it inherits before it dispatches a limited function', async (t) => {
  const w = new FakeWorker('w', 10)
  w.limits = { echo: { concurrency: 2, keyConcurrency: 1 } }
  const b = bench(w)
  const first = b.term(1)
  const jobs = [
    ...Array.from({ length: 4 }, () => newJob({ concurrencyKey: 'a' })),
    ...Array.from({ length: 4 }, () => newJob({ concurrencyKey: 'b' })),
  ]
  await started(b, first, jobs)
  await waitFor(() => w.running.size === 2, { what: 'two running under the first boss' })
  first.stop()
  const second = b.term(2)
  t.teardown(() => second.stop())
  await second.start()
  await waitFor(() => second.state === 'active', { what: 'the second term loaded' })
  await new Promise((r) => setTimeout(r, 50))
  t.equal(w.running.size, 2, 'still two: the inherited jobs count')
  t.equal(w.starts.length, 2, 'nothing more started')
  await finishAll(second, w)
  await waitFor(() => w.running.size === 2, { what: 'two more after they finish' })
  const keys = [...w.running.keys()].map((id) => jobs.find((j) => j.id === id)!.concurrencyKey)
  t.same(keys.sort(), ['a', 'b'], 'one per key')
})
