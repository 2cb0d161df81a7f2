/**
 * The one narrow interface between the HTTP layer and the cluster. The routes in api/routes/ call
 * only this; api/job-service.ts implements it on top of ZooKeeper and NATS, tests use an in-memory
 * fake. Everything here is plain TypeScript (no Fastify, no typebox) so implementers need neither.
 *
 * Errors: a method rejects with a BosunError (runner/errors.ts); the API answers with its
 * `statusCode`, `code` and `message`, adds `details` when present, and sends `Retry-After` when
 * `retryAfterSeconds` is set (e.g. `errors.NO_BOSS(…, { retryAfterSeconds: 1 })` → 503). Any other
 * thrown value becomes a logged 500, so implementations should translate their failures.
 */
import type { BulkRetryAnswer, BulkRetryQuery, RetryOptions } from './redrive.js'
import type { Job, JobSpec, JobState } from '../jobs/model.js'
import type { LiveLine } from '../jobs/live.js'

/**
 * Ids the API passes to `get` / `cancel`. Anything else is answered 404 by the route without
 * calling the service, so an implementation may use the id as a NATS subject token or KV key.
 */
export const JOB_ID_PATTERN = /^[A-Za-z0-9_-]{1,128}$/

/** The elected boss as `GET /cluster` shows it. */
export interface BossView {
  /** The boss's node id. */
  id: string
  host: string
  pid: number
  /** Fencing epoch of its leadership. */
  epoch: number
  /** ISO-8601 time its leadership began. */
  since: string
}

/** One worker that runs jobs, as `GET /cluster` shows it. */
export interface WorkerView {
  /** The worker's node id (the value of a job's `worker` field). */
  id: string
  host: string
  pid: number
  /** Function names it can run. */
  functions: string[]
  /** Jobs it runs at once (WORKER_CONCURRENCY). */
  capacity: number
  /** Jobs it runs now. */
  running: number
  /** Jobs dispatched to it ahead of a free slot (prefetch), waiting to start. */
  waiting: number
}

/** `GET /cluster`. */
export interface ClusterView {
  boss: BossView | null
  workers: WorkerView[]
}

/** `GET /cluster/stats`: the acting boss's last load report; nulls and zeros before the first. */
export interface ClusterLoadView {
  at: string | null
  epoch: number | null
  since: string | null
  queued: number
  running: number
  finished: number
}

/** Readiness: which connections are up (`GET /readyz`). */
export interface HealthView {
  zk: boolean
  nats: boolean
}

/** `GET /jobs` filters, already validated and defaulted by the route. */
export interface JobQuery {
  state?: JobState
  function?: string
  /** 1..1000 (default 100). */
  limit: number
  /** Continue after the previous page (its `next`); a malformed one is a 400. */
  cursor?: string
}

/** One page of `GET /jobs`. */
export interface JobPage {
  jobs: Job[]
  /** Present when more jobs match: the cursor of the next page. */
  next?: string
}

export interface SubmitOptions {
  /**
   * Hold the call until the job is final or this many ms pass (0..API_MAX_WAIT_MS, already
   * bounded by the route). Absent: answer as soon as the job is durably stored.
   */
  waitMs?: number
}

export interface SubmitResult {
  /** The stored job: its final record when `finished`, else its current state. */
  job: Job
  /** True when the job reached a final state within `waitMs` (→ 200; else 202). */
  finished: boolean
}

/** `GET /jobs/:id/logs`: the job's kept ctx.log lines (jobs/live.ts). */
export interface JobLogs {
  jobId: string
  lines: LiveLine[]
  /** Earlier lines were dropped (JOB_LOG_MAX_LINES / JOB_LOG_MAX_BYTES). */
  truncated: boolean
}

/** What the HTTP layer needs from the cluster. */
export interface JobService {
  /**
   * Store the job durably (the 202 promise) and, with `waitMs`, wait for it to finish.
   * Same `idempotencyKey` → the existing job. Rejects with UNKNOWN_FUNCTION (404) when no worker
   * advertises the function, NO_BOSS (503 + retryAfterSeconds) when no boss appears in time.
   */
  submit(spec: JobSpec, opts: SubmitOptions): Promise<SubmitResult>
  /**
   * Store every job (1..1000, already validated as a whole by the route), all or nothing as far as
   * the store allows; resolves with the jobs in input order. A bad item rejects with a BosunError
   * whose `details` is `{ index }`.
   */
  submitBatch(specs: JobSpec[]): Promise<Job[]>
  /** The job, or null when unknown (→ 404); with `waitMs`, answered once it is final or that many ms passed. */
  get(id: string, waitMs?: number): Promise<Job | null>
  /** The job's kept log lines (none when it never logged), or null when the job is unknown (→ 404). */
  logs(id: string): Promise<JobLogs | null>
  /**
   * A page of jobs matching the filters, newest first (unfinished jobs newest submitted first, then
   * finished ones newest finished first), at most `limit`, with the cursor of the next page.
   */
  list(q: JobQuery): Promise<JobPage>
  /**
   * Request cancellation: a queued job never runs, a running one gets its signal aborted.
   * Resolves with the job after the request (null when unknown → 404). A job that is already final
   * is returned unchanged (the API answers 200 with it; cancelling twice is not an error).
   */
  cancel(id: string): Promise<Job | null>
  /**
   * Retry a job that ended failed or cancelled (a new run: same id, attempts from 0, history kept);
   * resolves with the job queued again (null when unknown → 404). JOB_NOT_RETRYABLE (409) for any
   * other state. The same `requestId` answers the same (never a second run).
   */
  retry(id: string, opts: RetryOptions): Promise<Job | null>
  /** Retry the jobs matching a query (at most `limit`); the same `requestId` answers the same. */
  retryMany(q: BulkRetryQuery): Promise<BulkRetryAnswer>
  /** The boss (null when none is elected) and the live workers. */
  cluster(): Promise<ClusterView>
  /** The boss's last load report (queue depth, running, jobs its term finished); must answer at once. */
  load(): ClusterLoadView
  /** Connection state for readiness; must not throw and must answer at once. */
  health(): HealthView
}
