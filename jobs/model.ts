/** The job domain: one record shape shared by the API, the boss, the store and the workers. */
import type { AttemptEntry } from './attempts.js'
import type { CallbackView } from './callbacks/store.js'

export const JOB_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const
export type JobState = (typeof JOB_STATES)[number]
export function isFinal(state: JobState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'cancelled'
}

/** A function name per the contract: the file name without extension. */
export const FUNCTION_NAME_PATTERN = /^[a-z][a-z0-9_-]{0,63}$/

export const DEFAULT_MAX_ATTEMPTS = 1
export const MAX_MAX_ATTEMPTS = 100
export const DEFAULT_PRIORITY = 0
export const MIN_PRIORITY = -1000
export const MAX_PRIORITY = 1000
export const MAX_DELAY_MS = 30 * 24 * 3600 * 1000
export const DEFAULT_TIMEOUT_MS = 5 * 60 * 1000
export const MAX_TIMEOUT_MS = 24 * 3600 * 1000
/** Longest concurrencyKey (characters). */
export const MAX_CONCURRENCY_KEY_LENGTH = 128

/**
 * `{ ...record, ...fields }` made with Object.assign. Node 20's V8 takes a slow path for an object
 * literal that spreads a record and then adds properties the record lacks: ≈ 2.5 µs against ≈ 0.4 µs
 * (`node dist/bench/run.js micro`), and the boss makes several such copies per job. Its hot paths
 * (transitions, commit, the final write) use this instead.
 */
export function withFields<T extends object>(record: T, fields: Partial<T>): T {
  return Object.assign({}, record, fields)
}

export interface JobError {
  message: string
  code?: string
  name?: string
  /** RetryLaterError's delay (worker/function-kit.ts). */
  retryInMs?: number
}

/** What a client submits (POST /jobs body). */
export interface JobSpec {
  function: string
  payload?: unknown
  idempotencyKey?: string
  /** Higher runs first. */
  priority?: number
  delayMs?: number
  timeoutMs?: number
  maxAttempts?: number
  /** POSTed the finished job (README "Completion callbacks"); its host must be in BOSUN_CALLBACK_ALLOW. */
  callbackUrl?: string
  /** The job's key for per-key limits (e.g. a tenant id; README "Limits"). */
  concurrencyKey?: string
}

/** A job as stored and as answered by the API. */
export interface Job {
  id: string
  function: string
  state: JobState
  /** Attempts started so far. */
  attempts: number
  maxAttempts: number
  payload: unknown
  priority: number
  timeoutMs: number
  idempotencyKey?: string
  result?: unknown
  error?: JobError
  /** Id of the worker running or last running it. */
  worker?: string
  createdAt: string
  /** Not before this time (delayMs, retry backoff). */
  runAt?: string
  startedAt?: string
  finishedAt?: string
  /** Cancellation was requested (a running job gets its signal aborted). */
  cancelRequested?: boolean
  /** Fencing epoch of the boss that last wrote this record (0: written by the API at submit). */
  epoch: number
  /**
   * How many times the job was retried after it ended (POST /jobs/:id/retry; absent: never). Each
   * run ends in its own final record; a final record of an older run is superseded.
   */
  run?: number
  /** Every attempt that ended, oldest first (at most MAX_HISTORY_ENTRIES; see attempts.ts). */
  history?: AttemptEntry[]
  /** How many of its entries are in the ATTEMPTS stream (internal: a new boss reads them from there). */
  logged?: number
  /** The retry request that started this run (internal: a repeat of that request is answered, not applied). */
  reopenedBy?: string
  /** Where the finished job is POSTed (README "Completion callbacks"). */
  callbackUrl?: string
  /** Its key for per-key limits (README "Limits"). */
  concurrencyKey?: string
  /**
   * The last ctx.progress value (a number 0–100 or a small JSON object; jobs/live.ts): of the running
   * attempt while it runs (GET /jobs/:id, from the LIVE stream), of the last attempt in a final record.
   */
  progress?: unknown
  /** The callback's delivery state: never stored with the job, added by the API when it reads one. */
  callback?: CallbackView
}

/** Fields internal to bosun that the API does not show. */
export function publicJob(
  job: Job,
): Omit<Job, 'epoch' | 'runAt' | 'cancelRequested' | 'logged' | 'reopenedBy'> & { runAt?: string } {
  const { epoch: _e, cancelRequested: _c, logged: _l, reopenedBy: _r, ...rest } = job
  return rest
}
