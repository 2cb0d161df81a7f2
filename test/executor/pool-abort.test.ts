import t from 'tap'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { join } from 'node:path'
import { DEFAULT_FUNCTIONS_DIR } from '../../worker/executor/index.js'
import { waitFor } from '../helpers/wait.js'
import { captureLogger, makePool, req } from './helpers.js'

const sleepFile = join(DEFAULT_FUNCTIONS_DIR, 'sleep.mjs')
const sleep = (ms: number, extra: { timeoutMs?: number } = {}) => ({
  jobId: `sleep-${ms}`,
  attempt: 1,
  functionFile: sleepFile,
  payload: { ms },
  ...extra,
})

t.test('the main event loop stays responsive while a function busy-loops for 3 s', async (t) => {
  const pool = makePool(t)
  await pool.ready()
  await pool.run(req('busy', { ms: 1 })).promise // warm: module imported
  const histogram = monitorEventLoopDelay({ resolution: 10 })
  let maxDrift = 0
  let last = performance.now()
  const ticker = setInterval(() => {
    const now = performance.now()
    maxDrift = Math.max(maxDrift, now - last - 20)
    last = now
  }, 20)
  histogram.enable()
  const started = performance.now()
  const out = await pool.run(req('busy', { ms: 3000 })).promise
  const elapsed = performance.now() - started
  histogram.disable()
  clearInterval(ticker)
  t.same(out, { ok: true, result: { spins: true } })
  t.ok(elapsed >= 2990, `the busy loop really ran (${Math.round(elapsed)} ms)`)
  const maxDelayMs = histogram.max / 1e6
  const p99DelayMs = histogram.percentile(99) / 1e6
  t.comment(
    `event-loop delay max ${maxDelayMs.toFixed(1)} ms, p99 ${p99DelayMs.toFixed(1)} ms; ` +
      `max timer drift ${maxDrift.toFixed(1)} ms`,
  )
  // Run on the main thread, the loop would be blocked for the whole 3 s. The bounds leave room for a
  // 2-core machine loaded by other test suites (the busy thread takes one core): max is 20-50 ms when
  // the machine is quiet, up to ~140 ms with two suites at once.
  t.ok(maxDelayMs < 300, `max event-loop delay ${maxDelayMs.toFixed(1)} ms < 300 ms`)
  t.ok(p99DelayMs < 150, `p99 event-loop delay ${p99DelayMs.toFixed(1)} ms < 150 ms`)
  t.ok(maxDrift < 300, `max timer drift ${maxDrift.toFixed(1)} ms < 300 ms`)
})

t.test('a timeout aborts ctx.signal; a function that honours it ends at once', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { logger, abortGraceMs: 5000 })
  const started = Date.now()
  const out = await pool.run(sleep(60_000, { timeoutMs: 200 })).promise
  t.same(out, {
    ok: false,
    error: { message: 'job timed out after 200 ms', code: 'BOSUN_ERR_FUNCTION_TIMEOUT', name: 'TimeoutError' },
  })
  t.ok(Date.now() - started < 4000, 'well before the grace period ran out')
  const seen = await pool.run(req('wait-abort', null, { timeoutMs: 100, jobId: 'job-seen' })).promise
  t.match(seen, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_TIMEOUT' } })
  const aborted = await waitFor(() => lines.find((l) => l.jobId === 'job-seen' && l.msg === 'aborted'))
  t.match(
    aborted,
    { reasonName: 'TimeoutError', reasonCode: 'BOSUN_ERR_FUNCTION_TIMEOUT' },
    'ctx.signal.reason says why',
  )
  t.same(pool.stats().hardStops, 0)
  t.same(pool.stats().threadsStarted, 2, 'no thread was replaced')
})

t.test(
  'a function that ignores its signal but ends within the grace period still fails with the timeout',
  async (t) => {
    const pool = makePool(t, { concurrency: 1, abortGraceMs: 5000 })
    const out = await pool.run(req('ignore-signal', { ms: 400 }, { timeoutMs: 100 })).promise
    t.match(out, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_TIMEOUT', message: 'job timed out after 100 ms' } })
    t.same(pool.stats(), { threadsStarted: 1, hardStops: 0, crashes: 0, completed: 1 })
  },
)

t.test('a busy loop past its timeout: thread terminated and replaced, other jobs unaffected', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { concurrency: 2, abortGraceMs: 300, logger })
  await pool.ready()
  const other = pool.run(sleep(2500))
  const started = Date.now()
  const runaway = await pool.run(req('busy', { ms: 120_000 }, { timeoutMs: 200, jobId: 'job-runaway' })).promise
  t.match(runaway, {
    ok: false,
    error: {
      code: 'BOSUN_ERR_FUNCTION_TIMEOUT',
      message: /after 200 ms; the function ignored its abort signal, so its thread was stopped/,
    },
  })
  t.ok(Date.now() - started < 10_000, `stopped after ${Date.now() - started} ms`)
  t.ok(
    lines.some((l) => l.jobId === 'job-runaway' && /ignored its abort signal/.test(String(l.msg))),
    'the hard stop is logged',
  )
  t.equal(pool.running, 1, 'only the other job runs')
  t.same(await other.promise, { ok: true, result: { slept: 2500 } }, 'the job on the other thread finished normally')
  const stats = pool.stats()
  t.equal(stats.hardStops, 1)
  t.equal(stats.threadsStarted, 3, 'one replacement thread')
  t.equal(pool.capacity, 2)
  const outs = await Promise.all(Array.from({ length: 8 }, () => pool.run(req('counter')).promise))
  t.ok(
    outs.every((o) => o.ok),
    'the pool still runs jobs',
  )
  t.equal(new Set(outs.map((o) => (o.ok ? (o.result as { threadId: number }).threadId : 0))).size, 2, 'on two threads')
})

t.test('cancel of a running job aborts its signal; cancel of a queued job means it never runs', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { concurrency: 1, logger })
  const running = pool.run(req('wait-abort', null, { jobId: 'job-cancel' }))
  const queued = pool.run(req('ctx', null, { jobId: 'job-queued' }))
  t.equal(pool.queued, 1)
  await waitFor(() => lines.some((l) => l.jobId === 'job-cancel' && l.msg === 'waiting for abort'), {
    what: 'the function to start',
  })
  queued.abort('cancel')
  t.same(await queued.promise, {
    ok: false,
    error: { message: 'job was cancelled before it started', code: 'BOSUN_ERR_FUNCTION_CANCELLED', name: 'AbortError' },
  })
  running.abort('cancel')
  running.abort('timeout') // a second abort changes nothing
  t.same(await running.promise, {
    ok: false,
    error: { message: 'job was cancelled', code: 'BOSUN_ERR_FUNCTION_CANCELLED', name: 'AbortError' },
  })
  t.match(
    lines.find((l) => l.jobId === 'job-cancel' && l.msg === 'aborted'),
    { reasonName: 'AbortError', reasonCode: 'BOSUN_ERR_FUNCTION_CANCELLED' },
  )
  t.notOk(
    lines.some((l) => l.jobId === 'job-queued'),
    'the queued job never ran',
  )
  running.abort('cancel') // after the end: no effect
  t.same(await pool.run(req('sync-value', 1)).promise, { ok: true, result: { doubled: 2 } })
  t.same(pool.stats().threadsStarted, 1)
})

t.test('a function that kills its thread fails its job; the thread is replaced', async (t) => {
  const pool = makePool(t, { concurrency: 1 })
  t.match(await pool.run(req('stray-throw')).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_FUNCTION_CRASHED', message: /crashed its thread: stray callback exploded/ },
  })
  t.match(await pool.run(req('exit')).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_FUNCTION_CRASHED', message: /exit code 3/ },
  })
  t.same(await pool.run(req('sync-value', 3)).promise, { ok: true, result: { doubled: 6 } })
  t.match(pool.stats(), { crashes: 2, threadsStarted: 3 })
})

t.test('a function that exhausts its thread heap fails its job, the process lives on', async (t) => {
  const pool = makePool(t, { concurrency: 1, resourceLimits: { maxOldGenerationSizeMb: 48 } })
  t.match(await pool.run(req('oom')).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_FUNCTION_CRASHED', message: /ran out of memory \(thread heap limit 48 MiB\)/ },
  })
  t.same(await pool.run(req('sync-value', 4)).promise, { ok: true, result: { doubled: 8 } })
})

t.test('close() aborts running and queued jobs with shutdown, hard-stopping runaways', async (t) => {
  const pool = makePool(t, { concurrency: 2, abortGraceMs: 300 })
  await pool.ready()
  const polite = pool.run(sleep(60_000))
  const runaway = pool.run(req('busy', { ms: 120_000 }))
  const queued = pool.run(req('ctx'))
  await waitFor(() => pool.running === 2)
  const started = Date.now()
  await Promise.all([pool.close(), pool.close()])
  t.ok(Date.now() - started < 5000, 'closed within the grace period and a bit')
  const shutdown = { ok: false, error: { code: 'BOSUN_ERR_CLOSED', name: 'AbortError' } }
  t.match(await polite.promise, shutdown)
  t.match(await runaway.promise, { ok: false, error: { code: 'BOSUN_ERR_CLOSED', message: /thread was stopped/ } })
  t.match(await queued.promise, shutdown)
  t.equal(pool.running, 0)
  t.equal(pool.queued, 0)
})

t.test('drain() lets running jobs finish, refuses new ones, then closes', async (t) => {
  const pool = makePool(t, { concurrency: 2 })
  const a = pool.run(sleep(300))
  const draining = pool.drain(10_000)
  t.match(await pool.run(req('ctx')).promise, { ok: false, error: { code: 'BOSUN_ERR_CLOSED' } })
  await draining
  t.same(await a.promise, { ok: true, result: { slept: 300 } })
})

t.test('drain() past its deadline aborts what still runs', async (t) => {
  const pool = makePool(t, { concurrency: 1 })
  const long = pool.run(sleep(60_000))
  const started = Date.now()
  await pool.drain(200)
  t.ok(Date.now() - started < 5000)
  t.match(await long.promise, { ok: false, error: { code: 'BOSUN_ERR_CLOSED' } })
})
