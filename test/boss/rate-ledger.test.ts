/**
 * Rate limits across a boss change, on the bench (README "Limits"): the boss writes each rate
 * window that took starts before it sends those dispatches (worker/boss/rate-ledger.ts), and a new
 * boss reads them before its first dispatch of a rate-limited function (others do not wait) — so
 * the starts of a dead boss still count in the window, for a function's rate limit and a key's. A
 * window claiming a newer epoch stops the term. Windows recorded while a write is on its way share
 * the next write.
 */
import t from 'tap'
import { bench, FakeWorker, MemoryRates, newJob, type Bench } from '../helpers/boss-fakes.js'
import { FlowGate } from '../../worker/boss/flow-gate.js'
import { RateLedger } from '../../worker/boss/rate-ledger.js'
import { silentLogger } from '../../runner/index.js'
import { waitFor } from '../helpers/wait.js'
import type { BossTerm } from '../../worker/boss/term.js'
import type { Job } from '../../jobs/model.js'

const PER_MS = 600

/** When the worker took each job (the fake records it at dispatch), in start order. */
/** When the boss started each job, as dispatched (what its flow gate counted). */
const startTimes = (w: FakeWorker) => w.starts.map((id) => w.dispatchedAt.get(id)!)

async function firstBossStarts(b: Bench, w: FakeWorker, jobs: Job[], expected: number): Promise<BossTerm> {
  for (const j of jobs) b.store.put(j)
  const first = b.term(1)
  await first.start()
  await waitFor(() => w.starts.length === expected, { what: `${expected} started by the first boss` })
  first.stop() // it dies right after: what it started is in the store, nothing else of it survives
  return first
}

t.test("a function's rate limit holds across a boss change: the dead boss's starts count", async (t) => {
  const w = new FakeWorker('w', 50)
  const b = bench(w)
  b.limits.set('echo', { rateLimit: { max: 3, perMs: PER_MS } })
  await firstBossStarts(
    b,
    w,
    Array.from({ length: 6 }, () => newJob()),
    3,
  )
  const second = b.term(2)
  t.teardown(() => second.stop())
  await second.start()
  await waitFor(() => w.starts.length === 6, { timeoutMs: 5000, what: 'all six started' })
  const at = startTimes(w)
  for (let i = 3; i < at.length; i++)
    t.ok(at[i]! - at[i - 3]! >= PER_MS - 1, `start ${i + 1} is ${at[i]! - at[i - 3]!} ms after start ${i - 2}`)
  t.ok(b.rates.writes.length >= 2, 'both bosses wrote the window')
  t.same([...new Set(b.rates.writes.map((r) => r.epoch))], [1, 2], 'each with its epoch')
})

t.test("a key's rate limit holds across a boss change", async (t) => {
  const w = new FakeWorker('w', 50)
  const b = bench(w)
  b.limits.set('echo', { keyRateLimit: { max: 1, perMs: PER_MS } })
  const jobs = ['a', 'b', 'a', 'b'].map((k) => newJob({ concurrencyKey: k }))
  await firstBossStarts(b, w, jobs, 2)
  const second = b.term(2)
  t.teardown(() => second.stop())
  await second.start()
  await waitFor(() => w.starts.length === 4, { timeoutMs: 5000, what: 'all four started' })
  const at = startTimes(w)
  const keyOf = new Map(jobs.map((j) => [j.id, j.concurrencyKey!]))
  for (const k of ['a', 'b']) {
    const mine = w.starts.map((id, i) => [keyOf.get(id), at[i]!] as const).filter(([key]) => key === k)
    t.equal(mine.length, 2)
    t.ok(
      mine[1]![1] - mine[0]![1] >= PER_MS - 1,
      `key ${k}: second start ${mine[1]![1] - mine[0]![1]} ms after the first`,
    )
  }
})

t.test('starts stored by an earlier boss hold back a new one from its first dispatch', async (t) => {
  const w = new FakeWorker('w', 50)
  const b = bench(w)
  b.limits.set('echo', { rateLimit: { max: 2, perMs: PER_MS } })
  const now = Date.now()
  b.rates.put({ fn: 'echo', epoch: 1, starts: [now - 50, now - 20] })
  b.store.put(newJob())
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await new Promise((r) => setTimeout(r, PER_MS / 3))
  t.equal(w.starts.length, 0, 'the window is full: nothing started yet')
  await waitFor(() => w.starts.length === 1, { timeoutMs: 3000, what: 'started once the window opened' })
  t.ok(startTimes(w)[0]! - (now - 50) >= PER_MS - 1, 'not before the oldest stored start left the window')
})

t.test('a rate window written by a newer epoch stops the term before it dispatches', async (t) => {
  const w = new FakeWorker('w', 50)
  const b = bench(w)
  b.limits.set('echo', { rateLimit: { max: 5, perMs: PER_MS } })
  b.store.put(newJob())
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  // Epoch 3 wrote the window after this term read it: the write is refused and reveals it.
  b.rates.put({ fn: 'echo', epoch: 3, starts: [Date.now() - PER_MS * 10] })
  b.store.put(newJob())
  await waitFor(() => b.fenced.length > 0, { timeoutMs: 3000, what: 'the term fenced' })
  t.match(b.fenced[0], /rate window of echo was written by epoch 3/)
  await new Promise((r) => setTimeout(r, 50))
  t.ok(w.starts.length <= 1, 'the job whose window write was refused was not sent')
})

t.test('until the stored windows are read, only rate-limited functions wait; a failed read is retried', async (t) => {
  const w = new FakeWorker('w', 50, ['echo', 'other'])
  const b = bench(w)
  b.limits.set('echo', { rateLimit: { max: 5, perMs: PER_MS } })
  let open!: () => void
  b.rates.readGate = new Promise((r) => (open = r))
  b.rates.failReads = 1
  const limited = newJob()
  const free = newJob({ function: 'other' })
  b.store.put(limited)
  b.store.put(free)
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.starts.includes(free.id), { what: 'the unlimited job started' })
  await new Promise((r) => setTimeout(r, 50))
  t.notOk(w.starts.includes(limited.id), 'the rate-limited one waits for the windows')
  open()
  await waitFor(() => w.starts.includes(limited.id), { timeoutMs: 5000, what: 'started after the read (retried once)' })
})

function ledgerOn(max: number, perMs = PER_MS) {
  const rates = new MemoryRates()
  const gate = new FlowGate()
  gate.setLimits('echo', { rateLimit: { max, perMs } })
  const ledger = new RateLedger({
    port: rates,
    gate,
    epoch: 1,
    log: silentLogger(),
    forgedUnlessFenced: () => Promise.resolve(true),
  })
  /** One dispatch round of `n` starts now; what it must wait for. */
  const round = (n = 1) => {
    const now = Date.now()
    for (let i = 0; i < n; i++) gate.dispatched('echo', undefined, now)
    return { at: now, durable: ledger.record(gate.takeMovedWindows()) }
  }
  return { rates, gate, ledger, round }
}

/** Whether a successor reading `stored` counts, at every moment, at least the starts in `actual`. */
function covers(stored: readonly number[], actual: readonly number[]): boolean {
  const s = [...stored].sort((a, b) => b - a)
  const a = [...actual].sort((x, y) => y - x)
  return a.every((t, i) => i < s.length && s[i]! >= t)
}

t.test('windows recorded while a write is on its way share the next write', async (t) => {
  const { rates, round } = ledgerOn(20) // a limit the 20 starts reach: nothing reserved ahead
  let open!: () => void
  rates.writeGate = new Promise((r) => (open = r))
  const recorded: Array<Promise<void> | undefined> = []
  for (let i = 0; i < 20; i++) {
    recorded.push(round().durable)
    await new Promise((r) => setImmediate(r))
  }
  t.equal(rates.writesStarted, 1, 'one write on its way')
  t.ok(
    recorded.every((p) => p !== undefined),
    'every round waits for a write',
  )
  open()
  await Promise.all(recorded.map((p) => p ?? Promise.resolve()))
  t.equal(rates.writes.length, 2, 'the 19 rounds recorded meanwhile went in one more write')
  t.equal(rates.writes.at(-1)!.starts.length, 20, 'which holds every start')
})

t.test('a limit far from binding: starts reserved ahead, rounds send without waiting', async (t) => {
  const { rates, round } = ledgerOn(10_000)
  const first = round()
  t.ok(first.durable, 'the first round waits for its write')
  await first.durable
  const actual = [first.at]
  const waited: number[] = []
  for (let i = 0; i < 200; i++) {
    const r = round()
    actual.push(r.at)
    if (r.durable) waited.push(i)
  }
  t.same(waited, [], 'no later round waits for the store')
  t.ok(rates.writes.length <= 2, `${rates.writes.length} writes for 201 rounds`)
  const stored = rates.windows.get('fn.echo')?.starts ?? []
  t.ok(covers(stored, actual), 'a successor reading the store counts every start, none later than it was')
  t.ok(stored.length <= 10_000, 'the stored window stays within the limit')
})

t.test('reservations running low are refreshed before rounds must wait', async (t) => {
  const { rates, round } = ledgerOn(80, 4000) // blocks of 10 starts, 500 ms each
  const actual: number[] = []
  let waits = 0
  for (let i = 0; i < 60; i++) {
    const r = round()
    actual.push(r.at)
    if (r.durable) {
      waits++
      await r.durable
    }
    await new Promise((r) => setTimeout(r, 2))
  }
  t.ok(waits <= 2, `${waits} of 60 rounds waited (a block lasts 10)`)
  await new Promise((r) => setTimeout(r, 20))
  t.ok(covers(rates.windows.get('fn.echo')!.starts, actual), 'the store counts every start')
})

t.test('a window at its limit reserves nothing: each round waits for its write', async (t) => {
  const { rates, round } = ledgerOn(5)
  for (let i = 0; i < 5; i++) {
    const r = round()
    if (i === 4) t.ok(r.durable, 'the round that fills the window waits')
    await r.durable
  }
  const stored = rates.windows.get('fn.echo')!.starts
  t.equal(stored.length, 5, 'nothing stored beyond the limit')
})
