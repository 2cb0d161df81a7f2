/**
 * Shared function threads (worker/executor/pool.ts): `concurrency` runs on fewer threads, and what
 * the pool does when a function turns out not to be fit to share one — a call holding the thread,
 * an ignored abort signal, a thread dying under several runs.
 */
import { join } from 'node:path'
import t from 'tap'
import { availableParallelism } from 'node:os'
import { DEFAULT_FUNCTIONS_DIR, FunctionPool } from '../../worker/executor/index.js'
import { silentLogger } from '../../runner/logger.js'
import { loadWorkerConfig } from '../../worker/config.js'
import { captureLogger, makePool, req } from './helpers.js'

const bundled = (name: string) => join(DEFAULT_FUNCTIONS_DIR, `${name}.mjs`)

const sleep = (ms: number) => ({
  jobId: `sleep-${ms}-${Math.random()}`,
  attempt: 1,
  functionFile: bundled('sleep'),
  payload: { ms },
})
const threadOf = (o: { ok: boolean; result?: unknown }) => (o.ok ? (o.result as { threadId: number }).threadId : -1)

t.test('concurrency runs share the threads; the runs beyond it queue', async (t) => {
  const pool = makePool(t, { concurrency: 4, threads: 1 })
  await pool.ready()
  t.equal(pool.capacity, 4)
  t.equal(pool.threads, 1)
  const started = Date.now()
  const sleeps = [0, 1, 2, 3].map(() => pool.run(sleep(400)))
  const fifth = pool.run(req('counter'))
  t.equal(pool.running, 4)
  t.equal(pool.queued, 1, 'the fifth run waits for room')
  const outs = await Promise.all(sleeps.map((h) => h.promise))
  t.ok(
    outs.every((o) => o.ok),
    'all four ran',
  )
  t.ok(Date.now() - started < 1500, `four 400 ms sleeps on one thread took ${Date.now() - started} ms: at once`)
  t.ok((await fifth.promise).ok)
  const counters = await Promise.all([0, 1, 2, 3].map(() => pool.run(req('counter')).promise))
  t.equal(new Set(counters.map(threadOf)).size, 1, 'one thread')
  t.same(pool.stats().threadsStarted, 1)
})

t.test('threads are spread: each takes at most ⌈concurrency / threads⌉ runs', async (t) => {
  const pool = makePool(t, { concurrency: 4, threads: 2 })
  await pool.ready()
  const runs = [0, 1, 2, 3].map(() => pool.run(req('counter')))
  const outs = await Promise.all(runs.map((h) => h.promise))
  const perThread = new Map<number, number>()
  for (const o of outs) perThread.set(threadOf(o), (perThread.get(threadOf(o)) ?? 0) + 1)
  t.same([...perThread.values()].sort(), [2, 2])
})

t.test('by default a pool starts one thread per core, at most one per job', async (t) => {
  const wide = new FunctionPool({ concurrency: 64, logger: silentLogger(), execArgv: [] })
  t.teardown(() => wide.close())
  t.equal(wide.threads, Math.min(64, availableParallelism()))
  t.equal(wide.capacity, 64)
  const narrow = new FunctionPool({ concurrency: 1, logger: silentLogger(), execArgv: [] })
  t.teardown(() => narrow.close())
  t.equal(narrow.threads, 1)
})

t.test('a bad threads option is a configuration error', async (t) => {
  t.throws(() => makePool(t, { concurrency: 2, threads: 3 }), { code: 'BOSUN_ERR_CONFIG' })
  t.throws(() => makePool(t, { concurrency: 2, threads: 0 }), { code: 'BOSUN_ERR_CONFIG' })
})

t.test('a function whose call holds its thread runs alone from then on, on a thread of its own', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { concurrency: 4, threads: 1, maxSliceMs: 50, logger })
  await pool.ready()
  t.ok((await pool.run(req('busy', { ms: 200 }, { jobId: 'job-hog' })).promise).ok, 'the call itself succeeds')
  t.ok(
    lines.some((l) => l.function === 'busy' && l.jobId === 'job-hog' && /runs alone on a thread/.test(String(l.msg))),
    'logged once it is known',
  )
  // Now a busy run takes a thread for itself (a second one starts), and the others do not wait for it.
  const hog = pool.run(req('busy', { ms: 1500 }))
  const started = Date.now()
  const others = await Promise.all([0, 1, 2].map(() => pool.run(req('counter')).promise))
  t.ok(Date.now() - started < 1200, `the others finished in ${Date.now() - started} ms, not behind the busy run`)
  t.equal(pool.threads, 2, 'a thread started for the run that must be alone')
  t.equal(new Set(others.map(threadOf)).size, 1, 'the others shared the first thread')
  t.ok((await hog.promise).ok)
  t.equal(lines.filter((l) => /runs alone on a thread/.test(String(l.msg))).length, 1, 'said once')
})

t.test('a call under the slice bound keeps sharing', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { concurrency: 2, threads: 1, maxSliceMs: 1000, logger })
  t.ok((await pool.run(req('busy', { ms: 50 })).promise).ok)
  const outs = await Promise.all([pool.run(req('busy', { ms: 10 })), pool.run(req('counter'))].map((h) => h.promise))
  t.ok(outs.every((o) => o.ok))
  t.equal(pool.threads, 1, 'no thread of its own')
  t.notOk(lines.some((l) => /runs alone/.test(String(l.msg))))
})

t.test('a runaway on a shared thread: stopped, its neighbours handed back, then it runs alone', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { concurrency: 3, threads: 1, abortGraceMs: 300, maxSliceMs: 60_000, logger })
  await pool.ready()
  const neighbours = [pool.run(sleep(5000)), pool.run(sleep(5000))]
  const runaway = await pool.run(req('busy', { ms: 120_000 }, { timeoutMs: 200, jobId: 'job-runaway' })).promise
  t.match(runaway, {
    ok: false,
    error: {
      code: 'BOSUN_ERR_FUNCTION_TIMEOUT',
      message: /the function ignored its abort signal, so its thread was stopped/,
    },
  })
  t.notOk('handedBack' in runaway, 'the runaway is failed, not handed back')
  for (const n of await Promise.all(neighbours.map((h) => h.promise)))
    t.match(n, {
      ok: false,
      handedBack: true,
      error: {
        code: 'BOSUN_ERR_FUNCTION_CRASHED',
        message: /interrupted: .*job-runaway's function \(busy\) ignored its abort signal/,
      },
    })
  t.ok(lines.some((l) => l.function === 'busy' && /runs alone on a thread/.test(String(l.msg))))
  t.same(pool.stats().hardStops, 1)
  // The next runaway is alone: its hard stop touches nobody else.
  const bystander = pool.run(sleep(1500))
  const again = await pool.run(req('busy', { ms: 120_000 }, { timeoutMs: 200 })).promise
  t.match(again, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_TIMEOUT' } })
  t.same(await bystander.promise, { ok: true, result: { slept: 1500 } }, 'the bystander on the other thread finished')
  t.same(pool.stats().hardStops, 2)
})

t.test('a thread dying under several runs hands them all back; alone, the culprit fails by itself', async (t) => {
  const pool = makePool(t, { concurrency: 3, threads: 1 })
  await pool.ready()
  const neighbour = pool.run(sleep(3000))
  const killer = await pool.run(req('exit')).promise
  t.match(killer, {
    ok: false,
    handedBack: true,
    error: { code: 'BOSUN_ERR_FUNCTION_CRASHED', message: /interrupted/ },
  })
  t.match(await neighbour.promise, { ok: false, handedBack: true })
  t.same(pool.stats().crashes, 1)
  // Both functions now run alone: the killer's next death is its own and counts as a failure.
  const bystander = pool.run(sleep(800))
  const again = await pool.run(req('exit')).promise
  t.match(again, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_CRASHED', message: /exit code 3/ } })
  t.notOk('handedBack' in again)
  t.same(await bystander.promise, { ok: true, result: { slept: 800 } })
  t.ok((await pool.run(req('counter')).promise).ok, 'the pool goes on')
})

t.test('aborts of runs on a shared thread reach the right run', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { concurrency: 3, threads: 1, logger })
  const a = pool.run(req('wait-abort', null, { jobId: 'a' }))
  const b = pool.run(sleep(300))
  const c = pool.run(req('wait-abort', null, { jobId: 'c' }))
  // Both listen to their signals once they have logged.
  while (lines.filter((l) => l.msg === 'waiting for abort').length < 2) await new Promise((r) => setTimeout(r, 10))
  a.abort('cancel')
  t.match(await a.promise, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_CANCELLED' } })
  t.same(await b.promise, { ok: true, result: { slept: 300 } })
  c.abort('timeout')
  t.match(await c.promise, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_TIMEOUT' } })
  t.same(pool.stats().hardStops, 0, 'each honoured its own signal')
})

t.test('FUNCTION_THREADS: parsed once, at most WORKER_CONCURRENCY', async (t) => {
  t.equal(loadWorkerConfig({}).threads, undefined, 'unset: the pool picks min(concurrency, cores)')
  t.equal(loadWorkerConfig({ WORKER_CONCURRENCY: '16', FUNCTION_THREADS: '4' }).threads, 4)
  t.throws(() => loadWorkerConfig({ WORKER_CONCURRENCY: '4', FUNCTION_THREADS: '5' }), {
    code: 'BOSUN_ERR_CONFIG',
    message: /FUNCTION_THREADS \(5\) must not exceed WORKER_CONCURRENCY \(4\)/,
  })
  t.throws(() => loadWorkerConfig({ FUNCTION_THREADS: '0' }), { code: 'BOSUN_ERR_CONFIG' })
  t.throws(() => loadWorkerConfig({ FUNCTION_THREADS: 'two' }), { code: 'BOSUN_ERR_CONFIG' })
})

t.test('a signal first read after the abort is already aborted, with its reason', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { concurrency: 2, threads: 1, logger })
  await pool.ready()
  const late = pool.run(req('late-signal', { ms: 400 }))
  const fresh = pool.run(req('late-signal', { ms: 50 }))
  t.same(await fresh.promise, { ok: true, result: { aborted: false } }, 'not aborted: a clean signal')
  late.abort('cancel')
  t.match(await late.promise, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_CANCELLED' } })
  const said = await waitForLine(lines, (l) => l.msg === 'signal read late' && l.aborted === true)
  t.equal(said.reasonCode, 'BOSUN_ERR_FUNCTION_CANCELLED')
})

async function waitForLine(
  lines: Record<string, unknown>[],
  match: (l: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  for (let i = 0; i < 300; i++) {
    const line = lines.find(match)
    if (line) return line
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error('no such log line')
}
