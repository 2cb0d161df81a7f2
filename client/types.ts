/**
 * The typed client's public types (client/http.ts): jobs as the API answers them, with payload and
 * result typed by generics, and the options and queries of each call. Apart from the client so that
 * its behaviour and its shapes change separately.
 */
import type { publicJob, JobSpec, JobState } from '../jobs/model.js'
import type { ClusterEvent, ClusterEventType } from '../runner/events/model.js'
import type { LiveLine } from '../jobs/live.js'

export type { ClusterEvent, ClusterEventType, JobState }
export type JobLogLine = LiveLine

/** GET /jobs/:id/logs: the job's kept ctx.log lines across attempts, oldest first. */
export interface JobLogs {
  jobId: string
  lines: JobLogLine[]
  /** Earlier lines were dropped (the API's JOB_LOG_MAX_LINES / JOB_LOG_MAX_BYTES). */
  truncated: boolean
}

type PublicJob = ReturnType<typeof publicJob>

/** A job as the API answers it, its payload typed `P` and its result `R`. */
export type Job<P = unknown, R = unknown> = Omit<PublicJob, 'payload' | 'result'> & { payload: P; result?: R }

export interface BosunOptions {
  /** The API's base URL, e.g. http://127.0.0.1:3000. */
  url: string
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string
  /** Retries of a 429 / 503 / network error where safe (see the file header). @defaultValue 3 */
  maxRetries?: number
  /** A `Retry-After` longer than this is not waited for: the error is thrown. @defaultValue 30000 */
  maxRetryDelayMs?: number
  /** Per-request timeout (plus `waitMs` for a submit that waits). @defaultValue 30000 */
  requestTimeoutMs?: number
}

/** A job spec's options (jobs/model.ts JobSpec, without function and payload), and `waitMs`. */
export type SubmitOptions = Omit<JobSpec, 'function' | 'payload'> & {
  /** Hold the request until the job ends or this many ms pass (`?wait=`): the job as it then stands. */
  waitMs?: number
}

export interface ListQuery {
  state?: JobState
  function?: string
  /** Page size (≤ 1,000; the API's default 100). */
  limit?: number
  /** Start from this cursor (the `next` of an earlier page). */
  cursor?: string
}

export interface JobPage<P = unknown, R = unknown> {
  jobs: Job<P, R>[]
  next?: string
}

export interface RetryOptions {
  /** Attempts of the new run (1–100); default the job's own. */
  maxAttempts?: number
  /** Makes the retry idempotent: a repeat is answered as the first (and is retried by the client). */
  requestId?: string
}

export interface RetryManyQuery extends RetryOptions {
  state: 'failed' | 'cancelled'
  function?: string
  /** ISO time: only jobs finished before it. */
  before?: string
  /** ≤ 1,000; the API's default 100. */
  limit?: number
}

export interface WaitOptions {
  /** Reject with BosunTimeoutError after this long. */
  timeoutMs: number
  /** Poll interval when the API does not hold a long poll, growing ×1.5 up to 2 s. @defaultValue 100 */
  pollMs?: number
  signal?: AbortSignal
}

export interface EventsOptions {
  /** Only these types (filtered by the client: the stream carries all). */
  types?: readonly ClusterEventType[]
  /** Resume after this event id (events after it that are still retained); default: new events only. */
  lastEventId?: string
  /** Ends the iteration (and releases the connection). */
  signal?: AbortSignal
}
