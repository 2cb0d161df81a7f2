import t from 'tap'
import { join } from 'node:path'
import { DEFAULT_FUNCTIONS_DIR, FunctionPool, createExecutor } from '../../worker/executor/index.js'
import { silentLogger } from '../../runner/logger.js'
import { captureLogger, FIXTURES, makePool, req, tempDir } from './helpers.js'

const bundled = (name: string) => join(DEFAULT_FUNCTIONS_DIR, `${name}.mjs`)

t.test('bundled echo, sleep and fail', async (t) => {
  const pool = makePool(t)
  t.equal(pool.capacity, 2)
  const payload = { a: [1, 'two', { three: null }], s: 'ünïcødé' }
  t.same(await pool.run({ jobId: 'e', attempt: 1, functionFile: bundled('echo'), payload }).promise, {
    ok: true,
    result: payload,
  })
  t.same(await pool.run({ jobId: 'e0', attempt: 1, functionFile: bundled('echo'), payload: undefined }).promise, {
    ok: true,
    result: null,
  })
  const started = Date.now()
  t.same(await pool.run({ jobId: 's', attempt: 1, functionFile: bundled('sleep'), payload: { ms: 150 } }).promise, {
    ok: true,
    result: { slept: 150 },
  })
  t.ok(Date.now() - started >= 140, 'sleep waited')
  t.same(
    await pool.run({ jobId: 'f', attempt: 1, functionFile: bundled('fail'), payload: { message: 'boom' } }).promise,
    { ok: false, error: { message: 'boom', name: 'Error' } },
  )
  const bad = await pool.run({ jobId: 's2', attempt: 1, functionFile: bundled('sleep'), payload: { ms: 'soon' } })
    .promise
  t.match(bad, { ok: false, error: { name: 'TypeError', message: /ms must be/ } })
  t.equal(pool.running, 0)
})

t.test('ctx carries jobId, attempt, an AbortSignal, a logger and progress', async (t) => {
  const pool = makePool(t)
  const out = await pool.run(req('ctx', { p: 1 }, { jobId: 'job-ctx', attempt: 3 })).promise
  t.same(out, {
    ok: true,
    result: {
      payload: { p: 1 },
      keys: ['attempt', 'jobId', 'log', 'progress', 'signal'],
      jobId: 'job-ctx',
      attempt: 3,
      signalIsAbortSignal: true,
      aborted: false,
      logMethods: ['function', 'function', 'function', 'function'],
    },
  })
})

t.test('ctx.log lines reach the main logger with jobId, attempt and function', async (t) => {
  const { logger, lines } = captureLogger()
  const pool = makePool(t, { logger, maxLogLines: 10 })
  t.same(await pool.run(req('log', { extra: 20 }, { jobId: 'job-log', attempt: 2 })).promise, {
    ok: true,
    result: 'logged',
  })
  const fnLines = lines.filter((l) => l.component === 'job-function')
  const base = { jobId: 'job-log', attempt: 2, function: 'log' }
  t.match(fnLines[0], { ...base, level: 30, msg: 'plain formatted line' })
  t.match(fnLines[1], { ...base, level: 40, msg: 'with fields', step: 2, detail: 'x' })
  t.match(fnLines[2], { ...base, level: 50, msg: 'logged error', err: { message: 'logged error', name: 'Error' } })
  t.match(fnLines[3], { ...base, level: 20, msg: 'fields that cannot be cloned', n: 1 })
  t.equal(fnLines.filter((l) => /^extra/.test(String(l.msg))).length, 6, 'lines past maxLogLines are dropped')
  t.ok(
    fnLines.some((l) => l.level === 40 && /more than 10 ctx.log lines/.test(String(l.msg))),
    'once, with a warning',
  )
  t.equal(fnLines.length, 11)
})

t.test('results: undefined is null, sync functions work, the result limit counts UTF-8 bytes', async (t) => {
  const pool = makePool(t, { maxResultBytes: 1000 })
  t.same(await pool.run(req('undef')).promise, { ok: true, result: null })
  t.same(await pool.run(req('sync-value', 21)).promise, { ok: true, result: { doubled: 42 } })
  t.same(
    await pool.run(req('big', { bytes: 998 })).promise,
    { ok: true, result: 'x'.repeat(998) },
    '1000 bytes of JSON is allowed',
  )
  t.match(await pool.run(req('big', { bytes: 999 })).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_RESULT_TOO_LARGE', message: /1001 bytes .* limit is 1000/ },
  })
  // 400 characters of 3 UTF-8 bytes each: 1202 bytes, though only 402 UTF-16 units
  t.match(await pool.run({ ...req('echo-missing'), functionFile: bundled('echo'), payload: '€'.repeat(400) }).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_RESULT_TOO_LARGE' },
  })
})

t.test('the default result limit is 900 KiB', async (t) => {
  const pool = makePool(t, { concurrency: 1 })
  t.match(await pool.run(req('big', { bytes: 900 * 1024 - 2 })).promise, { ok: true })
  t.match(await pool.run(req('big', { bytes: 900 * 1024 })).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_RESULT_TOO_LARGE' },
  })
})

t.test('unserialisable results fail clearly', async (t) => {
  const pool = makePool(t)
  t.match(await pool.run(req('bigint')).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_RESULT_NOT_SERIALIZABLE', message: /BigInt/ },
  })
  t.match(await pool.run(req('cycle')).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_RESULT_NOT_SERIALIZABLE', message: /circular/i },
  })
  t.match(await pool.run(req('returns-function')).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_RESULT_NOT_SERIALIZABLE', message: /a function/ },
  })
})

t.test('thrown values of any kind fail the run', async (t) => {
  const pool = makePool(t)
  t.same(await pool.run(req('throw-string')).promise, {
    ok: false,
    error: { message: 'a bare string', name: 'NonError' },
  })
  t.match(await pool.run(req('throw-object')).promise, {
    ok: false,
    error: { name: 'NonError', message: /non-Error value: \{ weird: true, n: 1 \}/ },
  })
  t.same(await pool.run(req('throw-coded')).promise, {
    ok: false,
    error: { message: 'coded failure', name: 'TypeError', code: 'E_CUSTOM' },
  })
})

t.test('modules that cannot be used fail with BOSUN_ERR_FUNCTION_LOAD and the pool goes on', async (t) => {
  const pool = makePool(t, { concurrency: 1 })
  const cases: [string, RegExp][] = [
    ['no-default', /no-default\.mjs has no default export function \(found undefined\)/],
    ['default-not-function', /has no default export function \(found number\)/],
    ['import-throws', /import-throws\.mjs could not be loaded: exploded at import/],
    ['syntax-error', /syntax-error\.mjs could not be loaded: .+/],
    ['does-not-exist', /does-not-exist\.mjs could not be loaded: .*(Cannot find|ERR_MODULE_NOT_FOUND)/],
  ]
  for (const [name, message] of cases) {
    const out = await pool.run(req(name)).promise
    t.match(out, { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_LOAD', message } }, name)
    // and a second time (the failure is cached, not retried into a different state)
    t.match(
      await pool.run(req(name)).promise,
      { ok: false, error: { code: 'BOSUN_ERR_FUNCTION_LOAD' } },
      `${name} again`,
    )
  }
  const syntax = await pool.run(req('syntax-error')).promise
  t.match(syntax, { ok: false, error: { name: 'SyntaxError' } })
  t.same(await pool.run(req('sync-value', 2)).promise, { ok: true, result: { doubled: 4 } })
  t.same(pool.stats().crashes, 0, 'no thread died')
})

t.test('a module is imported once per thread and cached', async (t) => {
  const pool = makePool(t, { concurrency: 2 })
  const outs = await Promise.all(Array.from({ length: 20 }, () => pool.run(req('counter')).promise))
  const results = outs.map((o) =>
    o.ok ? (o.result as { threadId: number; imports: number; calls: number }) : undefined,
  )
  t.ok(
    results.every((r) => r !== undefined && r.imports === 1),
    'each thread evaluated the module once',
  )
  const threads = new Set(results.map((r) => r?.threadId))
  t.equal(threads.size, 2, 'both threads were used')
  const callsPerThread = new Map<number | undefined, number>()
  for (const r of results)
    callsPerThread.set(r?.threadId, Math.max(callsPerThread.get(r?.threadId) ?? 0, r?.calls ?? 0))
  t.equal(
    [...callsPerThread.values()].reduce((a, b) => a + b, 0),
    20,
    'module state lives on between calls in a thread',
  )
})

t.test('more runs than threads queue and all finish; running/queued count', async (t) => {
  const pool = makePool(t, { concurrency: 2 })
  const handles = Array.from({ length: 6 }, (_, i) => pool.run({ ...req('sync-value', i) }))
  t.equal(pool.running, 2)
  t.equal(pool.queued, 4)
  const outs = await Promise.all(handles.map((h) => h.promise))
  t.same(
    outs.map((o) => (o.ok ? (o.result as { doubled: number }).doubled : -1)),
    [0, 2, 4, 6, 8, 10],
  )
  t.equal(pool.running, 0)
  t.equal(pool.queued, 0)
})

t.test('bad run requests and a closed pool give failed outcomes, not throws', async (t) => {
  const pool = makePool(t)
  t.match(
    await pool.run({ jobId: 'x', attempt: 1, functionFile: undefined as unknown as string, payload: null }).promise,
    { ok: false, error: { code: 'BOSUN_ERR_BAD_MESSAGE' } },
  )
  t.match(await pool.run({ ...req('ctx'), payload: { f: () => 1 } }).promise, {
    ok: false,
    error: { code: 'BOSUN_ERR_BAD_MESSAGE', message: /cannot be sent/ },
  })
  t.same(await pool.run(req('sync-value', 1)).promise, { ok: true, result: { doubled: 2 } }, 'the thread is still free')
  await pool.close()
  await pool.close()
  t.match(await pool.run(req('sync-value', 1)).promise, { ok: false, error: { code: 'BOSUN_ERR_CLOSED' } })
})

t.test('a queued run whose payload cannot be sent does not hold up the runs behind it', async (t) => {
  const pool = makePool(t, { concurrency: 1 })
  const first = pool.run({ jobId: 's', attempt: 1, functionFile: bundled('sleep'), payload: { ms: 100 } })
  const bad = pool.run({ ...req('ctx'), payload: Symbol('no') })
  const good = pool.run(req('sync-value', 5))
  t.equal(pool.queued, 2)
  t.match(await bad.promise, { ok: false, error: { code: 'BOSUN_ERR_BAD_MESSAGE' } })
  t.same(await good.promise, { ok: true, result: { doubled: 10 } })
  t.match(await first.promise, { ok: true })
})

t.test('sleep refuses a duration Node cannot time', async (t) => {
  const pool = makePool(t, { concurrency: 1 })
  const out = await pool.run({ jobId: 's', attempt: 1, functionFile: bundled('sleep'), payload: { ms: 2 ** 31 } })
    .promise
  t.match(out, { ok: false, error: { name: 'TypeError', message: /from 0 to 2147483647/ } })
})

t.test('threads inherit the process Node options by default (here: tap TypeScript loader)', async (t) => {
  const pool = new FunctionPool({ concurrency: 1, logger: silentLogger() })
  t.teardown(() => pool.close())
  await pool.ready()
  t.same(await pool.run({ jobId: 'x', attempt: 1, functionFile: bundled('echo'), payload: 7 }).promise, {
    ok: true,
    result: 7,
  })
})

t.test('FunctionExecutor runs by name and refuses unknown names', async (t) => {
  const ex = await createExecutor({ functionsDir: FIXTURES, concurrency: 2, logger: silentLogger(), execArgv: [] })
  t.teardown(() => ex.close())
  t.equal(ex.capacity, 2)
  t.ok(ex.functions.includes('ctx') && ex.functions.includes('busy'))
  t.same(await ex.run({ jobId: 'j', attempt: 1, fn: 'sync-value', payload: 5 }).promise, {
    ok: true,
    result: { doubled: 10 },
  })
  const unknown = ex.run({ jobId: 'j', attempt: 1, fn: '../functions/echo', payload: 5 })
  unknown.abort('cancel')
  t.match(await unknown.promise, { ok: false, error: { code: 'BOSUN_ERR_UNKNOWN_FUNCTION' } })
  const defaults = await createExecutor({ concurrency: 1, logger: silentLogger(), execArgv: [] })
  t.teardown(() => defaults.close())
  t.ok(
    ['echo', 'fail', 'sleep'].every((n) => defaults.functions.includes(n)),
    'defaults to the bundled functions',
  )
})

t.test('a .js function in a folder with no package.json loads as an ES module', async (t) => {
  const dir = tempDir(t, { 'greet.js': 'export default async (p, ctx) => `hello ${p.name} from ${ctx.jobId}`\n' })
  const ex = await createExecutor({ functionsDir: dir, concurrency: 1, logger: silentLogger(), execArgv: [] })
  t.teardown(() => ex.close())
  t.same(ex.functions, ['greet'])
  t.same(await ex.run({ jobId: 'j1', attempt: 1, fn: 'greet', payload: { name: 'bosun' } }).promise, {
    ok: true,
    result: 'hello bosun from j1',
  })
})
