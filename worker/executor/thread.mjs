/**
 * Worker-thread entry of the FunctionPool (plain JavaScript: tsc does not compile or copy it, the pool
 * finds it from the project root). Runs job functions off the main thread that holds the ZooKeeper
 * session: as many at once as the pool gives it (several async jobs may share a thread, README "Job
 * functions"). Protocol: worker/executor/thread-protocol.ts.
 *
 * - Function modules are imported once per thread and cached (a failed import stays failed).
 * - ctx = { jobId, attempt, signal, log, progress }; the signal is aborted by an `abort` message.
 * - ctx.progress(value) checks the value here (a TypeError in the function for a bad one, the same
 *   rules as jobs/live.ts progressProblem) and forwards it; the main thread keeps it with the job.
 * - The result is JSON-serialised and size-checked here, so the main thread only parses a string.
 * - Runs and aborts may arrive several to a message (`batch`); the `done` messages of the runs that end
 *   in one turn of this thread's loop leave as one `dones` message — one wake-up of the main thread
 *   for many jobs.
 * - A call whose synchronous slice holds this thread past `maxSliceMs` is reported at once (`slow`):
 *   the pool stops sharing a thread with that function.
 * - An uncaught exception or unhandled rejection ends this thread; the pool settles the jobs it held
 *   and starts a new thread.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { basename, extname } from 'node:path'
import { pathToFileURL } from 'node:url'
import { format, inspect } from 'node:util'

/** @type {import('./thread-protocol.ts').ThreadData & { codes: Record<string, string> }} */
const data = workerData
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort)
const MAX_TEXT = 8192
const LEVELS = ['debug', 'info', 'warn', 'error', 'silent']
const minLevel = Math.max(0, LEVELS.indexOf(data.minLogLevel))
const noop = () => {}

/** file → loaded function (fast path) */
const fns = new Map()
/** file → Promise<{ fn } | { error, stack? }> */
const loading = new Map()
/**
 * run id → { controller, reason } of that running job. The AbortController is made only when the
 * function reads ctx.signal (an abort before that is kept as `reason`): most jobs never read it, and
 * a controller per job is a measurable share of a short job's cost (as inline.ts found).
 */
const running = new Map()
/** done messages of this turn, sent together by flushDone */
let doneOut = []
let flushQueued = false

/** file → the module declared `export const config = { isolation: 'inline' }` */
const inline = new Map()
/** file → the limits fields of its `config` (concurrency, rateLimit, …), JSON-safe; parsed by the worker. */
const limits = new Map()
const LIMIT_FIELDS = ['concurrency', 'rateLimit', 'keyConcurrency', 'keyRateLimit']

function receive(msg) {
  if (msg.t === 'run') void run(msg)
  else if (msg.t === 'abort') abort(msg.id, msg.reason)
  else if (msg.t === 'describe') void describeFiles(msg)
}

port.on('message', (msg) => {
  if (msg.t === 'batch') for (const m of msg.msgs) receive(m)
  else receive(msg)
})
port.postMessage({ t: 'ready' })

function clip(text) {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}… (${text.length - MAX_TEXT} more characters)` : text
}

function functionName(file) {
  return basename(file, extname(file))
}

/** The reason ctx.signal carries: an Error with a name a function can test and a bosun code. */
function abortReason(reason) {
  const err =
    reason === 'timeout'
      ? new Error('job timed out')
      : new Error(reason === 'cancel' ? 'job was cancelled' : 'worker is shutting down')
  err.name = reason === 'timeout' ? 'TimeoutError' : 'AbortError'
  err.code = reason === 'timeout' ? data.codes.timeout : reason === 'cancel' ? data.codes.cancelled : data.codes.closed
  return err
}

function abort(id, reason) {
  const entry = running.get(id)
  if (entry === undefined || entry.reason !== undefined) return
  entry.reason = reason
  entry.controller?.abort(abortReason(reason))
}

/** ctx for one run: `signal`, `log` and `progress` are made when the function first reads them. */
function makeCtx(msg, entry) {
  let log
  let progress
  return {
    jobId: msg.jobId,
    attempt: msg.attempt,
    get signal() {
      if (entry.controller === undefined) {
        entry.controller = new AbortController()
        if (entry.reason !== undefined) entry.controller.abort(abortReason(entry.reason))
      }
      return entry.controller.signal
    },
    get log() {
      return (log ??= makeLog(msg.id, msg.jobId, msg.attempt, functionName(msg.file)))
    },
    get progress() {
      return (progress ??= makeProgress(msg.id))
    },
  }
}

function flushDone() {
  if (doneOut.length === 0) return
  const list = doneOut
  doneOut = []
  if (list.length === 1) port.postMessage(list[0])
  else port.postMessage({ t: 'dones', list })
}

/**
 * Queue a run's done message; the turn's messages leave together once this turn's callbacks ran —
 * or at once when no run is left that could end in this turn (one job per thread: no waiting).
 */
function sendDone(reply) {
  doneOut.push(reply)
  if (running.size === 0) return flushDone()
  if (flushQueued) return
  flushQueued = true
  setImmediate(() => {
    flushQueued = false
    flushDone()
  })
}

/** A JSON-safe description of any thrown value; reading it must not throw either. */
function describe(err) {
  try {
    if (err instanceof Error || (typeof err === 'object' && err !== null && typeof err.message === 'string')) {
      const error = { message: clip(String(err.message)) || String(err.name || 'Error') }
      if (typeof err.name === 'string') error.name = err.name
      if (typeof err.code === 'string') error.code = err.code
      if (Number.isSafeInteger(err.retryInMs) && err.retryInMs >= 0) error.retryInMs = err.retryInMs
      return { error, stack: typeof err.stack === 'string' ? clip(err.stack) : undefined }
    }
    if (typeof err === 'string')
      return { error: { message: clip(err) || 'function threw an empty string', name: 'NonError' } }
    return {
      error: {
        message: `function threw a non-Error value: ${clip(inspect(err, { depth: 2, breakLength: Infinity }))}`,
        name: 'NonError',
      },
    }
  } catch {
    return { error: { message: 'function threw a value that cannot be described', name: 'NonError' } }
  }
}

async function importFunction(file) {
  const name = basename(file)
  let mod
  try {
    mod = await import(pathToFileURL(file).href)
  } catch (err) {
    const { error, stack } = describe(err)
    return {
      error: {
        message: `function module ${name} could not be loaded: ${error.message}`,
        code: data.codes.load,
        name: error.name,
      },
      stack,
    }
  }
  try {
    inline.set(file, mod.config?.isolation === 'inline')
    const declared = {}
    for (const f of LIMIT_FIELDS) if (mod.config?.[f] !== undefined) declared[f] = mod.config[f]
    if (Object.keys(declared).length > 0) limits.set(file, JSON.parse(JSON.stringify(declared)))
  } catch {
    inline.set(file, false)
    limits.set(file, { unreadable: true })
  }
  const fn = mod.default
  if (typeof fn !== 'function') {
    return {
      error: {
        message: `function module ${name} has no default export function (found ${fn === null ? 'null' : typeof fn})`,
        code: data.codes.load,
        name: 'TypeError',
      },
    }
  }
  fns.set(file, fn)
  return { fn }
}

function load(file) {
  let pending = loading.get(file)
  if (pending === undefined) {
    pending = importFunction(file)
    loading.set(file, pending)
  }
  return pending
}

/** ctx.log for one run: pino-style calls, lines forwarded to the main thread (at most maxLogLines). */
function makeLog(id, jobId, attempt, fn) {
  let lines = 0
  const emit = (level, args) => {
    if (lines >= data.maxLogLines) {
      if (lines++ === data.maxLogLines)
        post({
          t: 'log',
          id,
          jobId,
          attempt,
          fn,
          level: 'warn',
          msg: `more than ${data.maxLogLines} ctx.log lines: the rest of this run's lines are dropped`,
        })
      return
    }
    lines++
    let fields
    let rest = args
    const first = args[0]
    if (first instanceof Error) {
      fields = {
        err: { ...describe(first).error, stack: typeof first.stack === 'string' ? clip(first.stack) : undefined },
      }
      rest = args.length > 1 ? args.slice(1) : [first.message]
    } else if (typeof first === 'object' && first !== null && !Array.isArray(first)) {
      fields = first
      rest = args.slice(1)
    }
    let msg
    try {
      msg = clip(format(...rest))
    } catch {
      msg = '(unformattable log message)'
    }
    post({ t: 'log', id, jobId, attempt, fn, level, msg, fields })
  }
  return Object.freeze({
    debug: minLevel <= 0 ? (...args) => emit('debug', args) : noop,
    info: minLevel <= 1 ? (...args) => emit('info', args) : noop,
    warn: minLevel <= 2 ? (...args) => emit('warn', args) : noop,
    error: minLevel <= 3 ? (...args) => emit('error', args) : noop,
  })
}

/** postMessage, falling back to JSON-safe fields when a log line's fields cannot be cloned. */
function post(msg) {
  try {
    port.postMessage(msg)
  } catch {
    let fields
    try {
      fields = JSON.parse(JSON.stringify(msg.fields))
    } catch {
      fields = { fieldsDropped: 'not serialisable' }
    }
    port.postMessage({ ...msg, fields })
  }
}

const MAX_PROGRESS_BYTES = 1024

/** Why `value` is not a valid progress value (mirrors jobs/live.ts progressProblem), or undefined. */
function progressProblem(value) {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 && value <= 100
      ? undefined
      : `a progress number must be finite and within 0–100, got ${String(value)}`
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
    return `progress must be a number 0–100 or a plain JSON object, got ${got}`
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return 'progress must be a plain object (not a class instance)'
  let json
  try {
    json = JSON.stringify(value)
  } catch (err) {
    return `progress is not JSON-serialisable: ${describe(err).error.message}`
  }
  if (json === undefined) return 'progress is not JSON-serialisable'
  const bytes = Buffer.byteLength(json, 'utf8')
  if (bytes > MAX_PROGRESS_BYTES)
    return `progress is too large: ${bytes} bytes of JSON, the limit is ${MAX_PROGRESS_BYTES}`
  return undefined
}

/** ctx.progress for one run: checked here, forwarded as JSON-safe data. */
function makeProgress(id) {
  return (value) => {
    const problem = progressProblem(value)
    if (problem !== undefined) {
      const err = new TypeError(`ctx.progress: ${problem}`)
      err.code = data.codes.badProgress
      throw err
    }
    const copy = typeof value === 'number' ? value : JSON.parse(JSON.stringify(value))
    port.postMessage({ t: 'progress', id, value: copy })
  }
}

function serialise(id, result) {
  let json
  try {
    json = JSON.stringify(result === undefined ? null : result)
  } catch (err) {
    return {
      t: 'done',
      id,
      ok: false,
      error: {
        message: `job result is not JSON-serialisable: ${describe(err).error.message}`,
        code: data.codes.notSerializable,
        name: 'TypeError',
      },
    }
  }
  if (json === undefined) {
    return {
      t: 'done',
      id,
      ok: false,
      error: {
        message: `job result is not JSON-serialisable (a ${typeof result})`,
        code: data.codes.notSerializable,
        name: 'TypeError',
      },
    }
  }
  // json.length (UTF-16 units) never exceeds the UTF-8 byte length, which is at most 3 × json.length.
  const max = data.maxResultBytes
  if (json.length > max || (json.length * 3 > max && Buffer.byteLength(json, 'utf8') > max)) {
    const bytes = Buffer.byteLength(json, 'utf8')
    return {
      t: 'done',
      id,
      ok: false,
      error: {
        message: `job result is too large: ${bytes} bytes of JSON, the limit is ${max}`,
        code: data.codes.tooLarge,
        name: 'RangeError',
      },
    }
  }
  return { t: 'done', id, ok: true, json }
}

/** Call the function, timing its synchronous slice (reported when it held the thread too long). */
function call(fn, msg, ctx) {
  const t0 = performance.now()
  try {
    return fn(msg.payload, ctx)
  } finally {
    const ms = performance.now() - t0
    if (ms > data.maxSliceMs) port.postMessage({ t: 'slow', id: msg.id, ms: Math.round(ms) })
  }
}

async function run(msg) {
  const entry = { controller: undefined, reason: undefined }
  running.set(msg.id, entry)
  let reply
  try {
    let fn = fns.get(msg.file)
    if (fn === undefined) {
      const loaded = await load(msg.file)
      if (loaded.error) reply = { t: 'done', id: msg.id, ok: false, error: loaded.error, stack: loaded.stack }
      else fn = loaded.fn
    }
    if (fn !== undefined) {
      reply = serialise(msg.id, await call(fn, msg, makeCtx(msg, entry)))
    }
  } catch (err) {
    const { error, stack } = describe(err)
    reply = { t: 'done', id: msg.id, ok: false, error, stack }
  }
  running.delete(msg.id)
  sendDone(reply)
}

/** Import each file (as a run would) and report which declare inline isolation, and their limits. */
async function describeFiles(msg) {
  const configs = {}
  for (const file of msg.files) {
    const loaded = await load(file)
    configs[file] = { inline: !loaded.error && inline.get(file) === true }
    if (!loaded.error && limits.has(file)) configs[file].limits = limits.get(file)
  }
  port.postMessage({ t: 'described', id: msg.id, configs })
}
