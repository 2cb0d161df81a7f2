/**
 * Inline execution: a function that declares `export const config = { isolation: 'inline' }` runs
 * on the worker's main thread, without the two worker-thread hand-offs a threaded run costs (the
 * bundled `noop` and `echo` declare it). It is for short, well-behaved functions: the main thread
 * also holds the ZooKeeper session, so each call's synchronous slice is measured, and a function
 * that ever holds the thread past `maxSliceMs` — or ignores its abort signal past the kill grace —
 * goes back to threads for good (logged). What inline cannot do is stop a runaway call: after the
 * grace its attempt is failed and the promise is left behind.
 */
import { pathToFileURL } from 'node:url'
import { basename, extname } from 'node:path'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import type { JobError } from '../../jobs/model.js'
import {
  abortOutcome,
  failure,
  type AbortReason,
  type LiveChannel,
  type RunHandle,
  type RunOutcome,
} from './outcomes.js'
import { keptLog, progressOf } from './live-ctx.js'

/** A synchronous slice longer than this sends the function back to threads. */
export const DEFAULT_MAX_SLICE_MS = 20

export interface InlineRunRequest {
  jobId: string
  attempt: number
  file: string
  payload: unknown
  timeoutMs?: number
  /** Where ctx.progress and ctx.log are kept (absent: log lines only go to the logger). */
  live?: LiveChannel | undefined
}

export interface InlineOptions {
  maxResultBytes: number
  abortGraceMs: number
  maxSliceMs?: number
  logger: Logger
}

type JobFn = (payload: unknown, ctx: unknown) => unknown

function abortError(reason: AbortReason): Error {
  const err = new Error(
    reason === 'timeout' ? 'job timed out' : reason === 'cancel' ? 'job was cancelled' : 'worker is shutting down',
  )
  err.name = reason === 'timeout' ? 'TimeoutError' : 'AbortError'
  return err
}

function describe(err: unknown): RunOutcome {
  if (err instanceof Error) {
    const { code, retryInMs } = err as { code?: unknown; retryInMs?: unknown }
    const error: JobError = { message: err.message || err.name, name: err.name }
    if (typeof code === 'string') error.code = code
    if (Number.isSafeInteger(retryInMs) && (retryInMs as number) >= 0) error.retryInMs = retryInMs as number
    return { ok: false, error }
  }
  return failure('', typeof err === 'string' ? err : 'function threw a non-Error value', 'NonError')
}

export class InlineRunner {
  private readonly fns = new Map<string, Promise<JobFn>>()
  /** Files that misbehaved inline and run on threads from now on. */
  private readonly demoted = new Set<string>()
  private readonly log: Logger
  private readonly maxSliceMs: number

  constructor(
    /** Files whose modules declare inline isolation. */
    private readonly files: ReadonlySet<string>,
    private readonly o: InlineOptions,
  ) {
    this.log = o.logger.child({ component: 'inline-functions' })
    this.maxSliceMs = o.maxSliceMs ?? DEFAULT_MAX_SLICE_MS
  }

  /** True when `file` runs inline (it declared so and has not misbehaved). */
  handles(file: string): boolean {
    return this.files.has(file) && !this.demoted.has(file)
  }

  run(req: InlineRunRequest): RunHandle {
    // The controller is made only when the function reads ctx.signal or the job is aborted: most jobs
    // need neither, and an AbortController costs ≈ 7 % of a worker's CPU at full rate of no-op jobs.
    let controller: AbortController | undefined
    let settle!: (o: RunOutcome) => void
    const promise = new Promise<RunOutcome>((r) => (settle = r))
    let done = false
    let reason: AbortReason | undefined
    let timer: NodeJS.Timeout | undefined
    let grace: NodeJS.Timeout | undefined
    const finish = (o: RunOutcome) => {
      if (done) return
      done = true
      clearTimeout(timer)
      clearTimeout(grace)
      settle(reason !== undefined ? abortOutcome(reason, { timeoutMs: req.timeoutMs }) : o)
    }
    const abort = (why: AbortReason) => {
      if (done || reason !== undefined) return
      reason = why
      controller?.abort(abortError(why))
      grace = setTimeout(() => {
        this.demote(req.file, `ignored its abort signal for ${this.o.abortGraceMs} ms`)
        finish(abortOutcome(why, { timeoutMs: req.timeoutMs }))
      }, this.o.abortGraceMs)
    }
    if (typeof req.timeoutMs === 'number' && req.timeoutMs > 0)
      timer = setTimeout(() => abort('timeout'), Math.min(req.timeoutMs, 2 ** 31 - 1))
    void this.load(req.file).then(
      (fn) => {
        if (done || reason !== undefined) return finish(abortOutcome(reason ?? 'cancel', { started: false }))
        const name = basename(req.file, extname(req.file))
        const log = this.log
        let ctxLog: Logger | undefined
        const ctx = Object.freeze({
          jobId: req.jobId,
          attempt: req.attempt,
          get signal() {
            if (!controller) {
              controller = new AbortController()
              if (reason !== undefined) controller.abort(abortError(reason))
            }
            return controller.signal
          },
          get log() {
            if (ctxLog === undefined) {
              const child = log.child({ jobId: req.jobId, function: name })
              ctxLog = req.live === undefined ? child : keptLog(child, req.live)
            }
            return ctxLog
          },
          progress: progressOf(req.live),
        })
        const t0 = performance.now()
        let result: unknown
        let threw: { err: unknown } | undefined
        try {
          result = fn(req.payload, ctx)
        } catch (err) {
          threw = { err }
        }
        const slice = performance.now() - t0
        if (slice > this.maxSliceMs) this.demote(req.file, `held the thread for ${Math.round(slice)} ms in one call`)
        if (threw) return finish(describe(threw.err))
        Promise.resolve(result).then(
          (value) => finish(this.serialise(value)),
          (err: unknown) => finish(describe(err)),
        )
      },
      (err: unknown) =>
        finish(
          failure(
            errors.FUNCTION_LOAD.code,
            `function module ${basename(req.file)} could not be loaded: ${(err as Error).message}`,
          ),
        ),
    )
    return { promise, abort }
  }

  private load(file: string): Promise<JobFn> {
    let fn = this.fns.get(file)
    if (!fn) {
      fn = import(pathToFileURL(file).href).then((mod: { default?: unknown }) => {
        if (typeof mod.default !== 'function') throw new TypeError('no default export function')
        return mod.default as JobFn
      })
      this.fns.set(file, fn)
    }
    return fn
  }

  private serialise(value: unknown): RunOutcome {
    let json: string | undefined
    try {
      json = JSON.stringify(value === undefined ? null : value)
    } catch (err) {
      return failure(
        errors.RESULT_NOT_SERIALIZABLE.code,
        `job result is not JSON-serialisable: ${(err as Error).message}`,
        'TypeError',
      )
    }
    if (json === undefined)
      return failure(
        errors.RESULT_NOT_SERIALIZABLE.code,
        `job result is not JSON-serialisable (a ${typeof value})`,
        'TypeError',
      )
    const max = this.o.maxResultBytes
    if (json.length > max || (json.length * 3 > max && Buffer.byteLength(json, 'utf8') > max)) {
      return failure(
        errors.RESULT_TOO_LARGE.code,
        `job result is too large: ${Buffer.byteLength(json, 'utf8')} bytes of JSON, the limit is ${max}`,
        'RangeError',
      )
    }
    return { ok: true, result: json === 'null' ? null : (JSON.parse(json) as unknown) }
  }

  private demote(file: string, why: string): void {
    if (this.demoted.has(file)) return
    this.demoted.add(file)
    this.log.warn(
      { function: basename(file, extname(file)), why },
      'inline function misbehaved: it runs on threads from now on',
    )
  }
}
