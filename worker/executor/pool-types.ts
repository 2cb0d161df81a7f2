/**
 * The FunctionPool's option, request and statistics shapes (worker/executor/pool.ts), kept apart so
 * the pool's file holds its scheduling only.
 */
import type { ResourceLimits } from 'node:worker_threads'
import type { Logger } from '../../runner/logger.js'
import type { LiveChannel } from './outcomes.js'

export interface FunctionPoolOptions {
  /** Threads, and so jobs run at once (WORKER_CONCURRENCY). */
  concurrency: number
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
