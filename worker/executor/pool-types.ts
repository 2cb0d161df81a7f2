/**
 * The FunctionPool's option, request and statistics shapes and its defaults (worker/executor/pool.ts),
 * and the options checked and turned into thread settings — kept apart so the pool's file holds its
 * scheduling only.
 */
import { availableParallelism } from 'node:os'
import type { ResourceLimits } from 'node:worker_threads'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { basename, extname } from 'node:path'
import { THREAD_CODES, type AbortReason, type LiveChannel, type RunOutcome } from './outcomes.js'
import type { ThreadSlot, ThreadSpawnOptions } from './function-thread.js'

/** 900 KiB: below NATS's default 1 MiB max payload, with room for the envelope. */
export const DEFAULT_MAX_RESULT_BYTES = 900 * 1024
export const DEFAULT_ABORT_GRACE_MS = 1000
export const DEFAULT_MAX_LOG_LINES = 1000
export const DEFAULT_THREAD_HEAP_MB = 512
/** A call holding its thread longer than this stops its function sharing a thread (as inline's bound). */
export const DEFAULT_SHARED_SLICE_MS = 20

export interface FunctionPoolOptions {
  /** Jobs run at once (WORKER_CONCURRENCY). */
  concurrency: number
  /**
   * Threads started with the pool (FUNCTION_THREADS); the `concurrency` jobs share them, each thread
   * holding up to ⌈concurrency / threads⌉ at once. More start (up to `concurrency`) when functions
   * that may not share a thread need them.
   * @defaultValue min(concurrency, the machine's available parallelism)
   */
  threads?: number
  /** A call holding its thread longer than this stops its function sharing a thread. @defaultValue 20 */
  maxSliceMs?: number
  logger: Logger
  /** Largest result, as UTF-8 JSON bytes. @defaultValue 900 KiB */
  maxResultBytes?: number
  /** How long a function may ignore its aborted signal before its thread is terminated. @defaultValue 1000 */
  abortGraceMs?: number
  /** ctx.log lines forwarded per run. @defaultValue 1000 */
  maxLogLines?: number
  /**
   * Per-thread V8 limits; a function that exceeds them fails its job, not the process.
   * @defaultValue { maxOldGenerationSizeMb: 512 }
   */
  resourceLimits?: ResourceLimits
  /** Node options of the threads. @defaultValue process.execArgv (inherited, as Worker does) */
  execArgv?: string[]
}

export interface RunRequest {
  jobId: string
  /** 1-based. */
  attempt: number
  /** Absolute path of the function module (from FunctionCatalog.resolve). */
  functionFile: string
  payload: unknown
  /** Abort ctx.signal this long after the function starts; 0 or absent: no timeout. */
  timeoutMs?: number
  /** Where ctx.progress and ctx.log are kept (absent: log lines only go to the logger). */
  live?: LiveChannel | undefined
}

/** Counters since the pool started. */
export interface PoolStats {
  threadsStarted: number
  /** Threads terminated because a function ignored its aborted signal. */
  hardStops: number
  /** Threads that died under or between jobs (uncaught errors, process.exit, heap limit). */
  crashes: number
  completed: number
}

/** The options checked, with their defaults: threads to start, the abort grace, what each thread gets. */
export function poolSettings(
  opts: FunctionPoolOptions,
  debugLogs: boolean,
): { threads: number; graceMs: number; spawn: ThreadSpawnOptions } {
  if (!Number.isSafeInteger(opts.concurrency) || opts.concurrency < 1)
    throw errors.CONFIG(`concurrency must be an integer >= 1, got ${opts.concurrency}`)
  const threads = opts.threads ?? Math.min(opts.concurrency, availableParallelism())
  if (!Number.isSafeInteger(threads) || threads < 1 || threads > opts.concurrency)
    throw errors.CONFIG(`threads must be an integer from 1 to concurrency (${opts.concurrency}), got ${threads}`)
  return {
    threads,
    graceMs: opts.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS,
    spawn: {
      resourceLimits: opts.resourceLimits ?? { maxOldGenerationSizeMb: DEFAULT_THREAD_HEAP_MB },
      execArgv: opts.execArgv,
      threadData: {
        maxResultBytes: opts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES,
        maxLogLines: opts.maxLogLines ?? DEFAULT_MAX_LOG_LINES,
        // info and above are always sent: they are kept with the job (GET /jobs/:id/logs) whatever LOG_LEVEL says
        minLogLevel: debugLogs ? 'debug' : 'info',
        maxSliceMs: opts.maxSliceMs ?? DEFAULT_SHARED_SLICE_MS,
        codes: THREAD_CODES,
      },
    },
  }
}

/** The pool's record of one run, from request to outcome. */
export interface Run {
  id: number
  req: RunRequest
  /** The function file ('' when the request named none); `fn` its name, for logs. */
  file: string
  fn: string
  state: 'queued' | 'running' | 'aborting' | 'done'
  slot: ThreadSlot<Run> | undefined
  reason: AbortReason | undefined
  timer: NodeJS.Timeout | undefined
  resolve(outcome: RunOutcome): void
  promise: Promise<RunOutcome>
}

export function newRun(id: number, req: RunRequest): Run {
  let resolve!: (o: RunOutcome) => void
  const promise = new Promise<RunOutcome>((r) => (resolve = r))
  const file = typeof req.functionFile === 'string' ? req.functionFile : ''
  const fn = basename(file, extname(file))
  return { id, req, file, fn, state: 'queued', slot: undefined, reason: undefined, timer: undefined, resolve, promise }
}
