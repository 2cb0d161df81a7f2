/**
 * Every error bosun raises on purpose: one registry of coded errors (after Fastify's FST_ERR_*).
 * Each carries a stable `code`, and an HTTP `statusCode` where it can reach the API.
 */

export interface BosunErrorOptions {
  cause?: unknown
  /** Extra fields for the API answer / logs (e.g. `{ index: 3 }` for a batch item). */
  details?: Record<string, unknown>
  /** Seconds a client should wait before retrying (429 / 503). */
  retryAfterSeconds?: number
}

export class BosunError extends Error {
  override readonly name: string = 'BosunError'
  readonly details: Record<string, unknown> | undefined
  readonly retryAfterSeconds: number | undefined
  constructor(
    readonly code: string,
    readonly statusCode: number,
    message: string,
    opts: BosunErrorOptions = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.details = opts.details
    this.retryAfterSeconds = opts.retryAfterSeconds
  }
}

type ErrorFactory = (message?: string, opts?: BosunErrorOptions) => BosunError

function define(code: string, statusCode: number, defaultMessage: string): ErrorFactory & { code: string } {
  const factory = (message?: string, opts?: BosunErrorOptions) =>
    new BosunError(code, statusCode, message ?? defaultMessage, opts)
  return Object.assign(factory, { code })
}

/** The registry. `errors.X.code` is the code to compare against; `errors.X(msg)` builds one. */
export const errors = {
  // configuration / startup
  CONFIG: define('BOSUN_ERR_CONFIG', 500, 'invalid configuration'),
  // ZooKeeper session and recipes
  ZK_TIMEOUT: define('BOSUN_ERR_ZK_TIMEOUT', 503, 'ZooKeeper request timed out'),
  ZK_NOT_CONNECTED: define('BOSUN_ERR_ZK_NOT_CONNECTED', 503, 'not connected to ZooKeeper'),
  ZK_SESSION_LOST: define('BOSUN_ERR_ZK_SESSION_LOST', 503, 'ZooKeeper session lost'),
  ZK: define('BOSUN_ERR_ZK', 503, 'ZooKeeper request failed'),
  CLOSED: define('BOSUN_ERR_CLOSED', 503, 'component is closed'),
  ALREADY_STARTED: define('BOSUN_ERR_ALREADY_STARTED', 500, 'component already started'),
  NOT_LEADER: define('BOSUN_ERR_NOT_LEADER', 409, 'not the leader'),
  STALE_EPOCH: define('BOSUN_ERR_STALE_EPOCH', 409, 'fencing epoch is older than the newest seen'),
  // transport
  NATS_NOT_CONNECTED: define('BOSUN_ERR_NATS_NOT_CONNECTED', 503, 'not connected to NATS'),
  REQUEST_TIMEOUT: define('BOSUN_ERR_REQUEST_TIMEOUT', 503, 'request timed out'),
  NO_RESPONDERS: define('BOSUN_ERR_NO_RESPONDERS', 503, 'no process answers at that address'),
  BAD_MESSAGE: define('BOSUN_ERR_BAD_MESSAGE', 400, 'malformed message'),
  REMOTE: define('BOSUN_ERR_REMOTE', 502, 'the remote process answered with an error'),
  // jobs and the API
  VALIDATION: define('BOSUN_ERR_VALIDATION', 400, 'request does not match the schema'),
  BAD_JSON: define('BOSUN_ERR_BAD_JSON', 400, 'body is not valid JSON'),
  UNSUPPORTED_MEDIA_TYPE: define('BOSUN_ERR_UNSUPPORTED_MEDIA_TYPE', 415, 'unsupported content type'),
  BODY_TOO_LARGE: define('BOSUN_ERR_BODY_TOO_LARGE', 413, 'request body is too large'),
  UNKNOWN_FUNCTION: define('BOSUN_ERR_UNKNOWN_FUNCTION', 404, 'no worker advertises that function'),
  JOB_NOT_FOUND: define('BOSUN_ERR_JOB_NOT_FOUND', 404, 'job not found'),
  ROUTE_NOT_FOUND: define('BOSUN_ERR_ROUTE_NOT_FOUND', 404, 'route not found'),
  JOB_FINISHED: define('BOSUN_ERR_JOB_FINISHED', 409, 'job has already finished'),
  JOB_NOT_RETRYABLE: define('BOSUN_ERR_JOB_NOT_RETRYABLE', 409, 'only a failed or cancelled job can be retried'),
  IDEMPOTENCY_CONFLICT: define('BOSUN_ERR_IDEMPOTENCY_CONFLICT', 409, 'idempotency key reused'),
  SCHEDULE_NOT_FOUND: define('BOSUN_ERR_SCHEDULE_NOT_FOUND', 404, 'schedule not found'),
  SCHEDULE_EXISTS: define('BOSUN_ERR_SCHEDULE_EXISTS', 409, 'a schedule with that id exists'),
  SCHEDULE_CHANGED: define('BOSUN_ERR_SCHEDULE_CHANGED', 409, 'the schedule changed meanwhile'),
  NO_BOSS: define('BOSUN_ERR_NO_BOSS', 503, 'no boss is elected'),
  UNAVAILABLE: define('BOSUN_ERR_UNAVAILABLE', 503, 'service unavailable'),
  QUEUE_FULL: define('BOSUN_ERR_QUEUE_FULL', 429, 'too many queued jobs'),
  RATE_LIMITED: define('BOSUN_ERR_RATE_LIMITED', 429, 'rate limit exceeded'),
  UNAUTHORIZED: define('BOSUN_ERR_UNAUTHORIZED', 401, 'missing or invalid bearer token'),
  STORE: define('BOSUN_ERR_STORE', 503, 'job store request failed'),
  // job functions
  FUNCTION_LOAD: define('BOSUN_ERR_FUNCTION_LOAD', 500, 'job function could not be loaded'),
  FUNCTION_TIMEOUT: define('BOSUN_ERR_FUNCTION_TIMEOUT', 500, 'job timed out'),
  FUNCTION_CANCELLED: define('BOSUN_ERR_FUNCTION_CANCELLED', 500, 'job was cancelled'),
  RESULT_NOT_SERIALIZABLE: define('BOSUN_ERR_RESULT_NOT_SERIALIZABLE', 500, 'job result is not JSON-serialisable'),
  RESULT_TOO_LARGE: define('BOSUN_ERR_RESULT_TOO_LARGE', 500, 'job result is too large'),
  WORKER_LOST: define('BOSUN_ERR_WORKER_LOST', 500, 'the worker running the job was lost'),
  FUNCTION_CRASHED: define('BOSUN_ERR_FUNCTION_CRASHED', 500, 'job function crashed its thread'),
  BAD_PROGRESS: define('BOSUN_ERR_BAD_PROGRESS', 400, 'ctx.progress was called with a value it does not take'),
  // thrown by job functions (worker/function-kit.ts): control flow, not failures of bosun
  UNRECOVERABLE: define('BOSUN_ERR_UNRECOVERABLE', 500, 'the job cannot succeed: no retry'),
  RETRY_LATER: define('BOSUN_ERR_RETRY_LATER', 503, 'the job asked to run again later'),
  RECORD_TOO_LARGE: define('BOSUN_ERR_RECORD_TOO_LARGE', 500, 'the job record grew too large to store'),
  // anything unexpected
  INTERNAL: define('BOSUN_ERR_INTERNAL', 500, 'internal error'),
} as const

export type ErrorCode = (typeof errors)[keyof typeof errors]['code']

export function isBosunError(err: unknown, factory?: { code: string }): err is BosunError {
  return err instanceof BosunError && (factory === undefined || err.code === factory.code)
}

/** A plain, JSON-safe description of any thrown value (for job errors and logs). */
export function describeError(err: unknown): { message: string; code?: string; name?: string } {
  if (err instanceof BosunError) return { message: err.message, code: err.code, name: err.name }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { message: err.message, name: err.name, ...(typeof code === 'string' ? { code } : {}) }
  }
  return { message: typeof err === 'string' ? err : 'non-error thrown' }
}
