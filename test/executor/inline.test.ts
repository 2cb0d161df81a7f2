/**
 * Inline execution (worker/executor/inline.ts): a function that declares
 * `config = { isolation: 'inline' }` runs on the main thread; others, and every function with
 * FUNCTION_ISOLATION=threads, run on threads; an inline function that holds the thread past the
 * bound, or ignores its abort signal past the grace, is moved to threads for good; results are
 * checked as on threads (size, JSON).
 */
import t, { type Test } from 'tap'
import { fileURLToPath } from 'node:url'
import { createExecutor, type FunctionExecutor } from '../../worker/executor/index.js'
import { captureLogger } from './helpers.js'

const DIR = fileURLToPath(new URL('../fixtures/inline-functions/', import.meta.url))

async function executor(
  t: Test,
  isolation: 'declared' | 'threads' = 'declared',
): Promise<{ ex: FunctionExecutor; lines: Record<string, unknown>[] }> {
  const { logger, lines } = captureLogger()
  const ex = await createExecutor({
    functionsDir: DIR,
    concurrency: 2,
    isolation,
    execArgv: [],
    abortGraceMs: 200,
    maxResultBytes: 1024 * 1024,
    logger,
  })
  t.teardown(() => ex.close())
  return { ex, lines }
}

let n = 0
const run = (ex: FunctionExecutor, fn: string, payload: unknown = null, timeoutMs?: number) =>
  ex.run({ jobId: `j${++n}`, attempt: 1, fn, payload, ...(timeoutMs ? { timeoutMs } : {}) })

t.test('a function that declares inline isolation runs on the main thread; others on threads', async (t) => {
  const { ex } = await executor(t)
  t.same(await run(ex, 'where', { a: 1 }).promise, { ok: true, result: { threadId: 0, payload: { a: 1 } } })
  const threaded = await run(ex, 'threaded').promise
  t.ok(threaded.ok && (threaded.result as { threadId: number }).threadId > 0, 'undeclared: a worker thread')
})

t.test('FUNCTION_ISOLATION=threads runs every function on threads', async (t) => {
  const { ex } = await executor(t, 'threads')
  const r = await run(ex, 'where').promise
  t.ok(r.ok && (r.result as { threadId: number }).threadId > 0)
})

t.test('an inline function that holds the thread past the bound goes back to threads', async (t) => {
  const { ex, lines } = await executor(t)
  const first = await run(ex, 'hog', { ms: 60 }).promise
  t.same(first, { ok: true, result: { threadId: 0 } }, 'the call that blocked completes')
  t.ok(
    lines.some((l) => l.msg === 'inline function misbehaved: it runs on threads from now on'),
    'logged',
  )
  const next = await run(ex, 'hog', { ms: 0 }).promise
  t.ok(next.ok && (next.result as { threadId: number }).threadId > 0, 'and runs on a thread from then on')
  const other = await run(ex, 'where').promise
  t.same(other.ok && (other.result as { threadId: number }).threadId, 0, 'other inline functions stay inline')
})

t.test(
  'an inline function that ignores its abort signal fails with the timeout and goes back to threads',
  async (t) => {
    const { ex } = await executor(t)
    const t0 = Date.now()
    const r = await run(ex, 'deaf', { ms: 5000 }, 100).promise
    t.equal(r.ok, false)
    t.equal(!r.ok && r.error.code, 'BOSUN_ERR_FUNCTION_TIMEOUT')
    t.ok(Date.now() - t0 < 2000, 'answered after the timeout and the grace, not when the function ends')
    const next = await run(ex, 'deaf', { ms: 1 }).promise
    t.ok(next.ok && (next.result as { threadId: number }).threadId > 0, 'runs on a thread from then on')
  },
)

t.test('an inline function is cancelled through its signal', async (t) => {
  const { ex } = await executor(t)
  const h = run(ex, 'deaf', { ms: 5000 })
  h.abort('cancel')
  const r = await h.promise
  t.equal(!r.ok && r.error.code, 'BOSUN_ERR_FUNCTION_CANCELLED')
})

t.test('a signal first read after the abort is already aborted, with the reason', async (t) => {
  const { ex } = await executor(t)
  const g = globalThis as { __bosunLateSignal?: { jobId: string; aborted: boolean; name?: string } }
  const seen = async (jobId: string) => {
    for (let i = 0; i < 100 && g.__bosunLateSignal?.jobId !== jobId; i++) await new Promise((r) => setTimeout(r, 10))
    return g.__bosunLateSignal
  }
  const quiet = ex.run({ jobId: 'late-1', attempt: 1, fn: 'late-signal', payload: { ms: 20 } })
  t.same(await quiet.promise, { ok: true, result: 'done' })
  t.same(await seen('late-1'), { jobId: 'late-1', aborted: false, name: undefined }, 'not aborted: a quiet signal')
  const h = ex.run({ jobId: 'late-2', attempt: 1, fn: 'late-signal', payload: { ms: 100 } })
  await new Promise((r) => setTimeout(r, 20)) // started, not reading its signal yet
  h.abort('cancel')
  const r = await h.promise
  t.equal(!r.ok && r.error.code, 'BOSUN_ERR_FUNCTION_CANCELLED')
  t.same(await seen('late-2'), { jobId: 'late-2', aborted: true, name: 'AbortError' })
})

t.test('inline results are checked as on threads: too large, not JSON', async (t) => {
  const { ex } = await executor(t)
  const big = await run(ex, 'huge', { bytes: 2_000_000 }).promise
  t.equal(!big.ok && big.error.code, 'BOSUN_ERR_RESULT_TOO_LARGE')
  const bigint = await run(ex, 'huge', { kind: 'bigint' }).promise
  t.equal(!bigint.ok && bigint.error.code, 'BOSUN_ERR_RESULT_NOT_SERIALIZABLE')
})
