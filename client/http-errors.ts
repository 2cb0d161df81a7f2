/**
 * The typed HTTP client's errors (client/http.ts): every failure is a `BosunClientError`. An answer of
 * the API is a `BosunApiError` carrying its `status`, its stable `BOSUN_ERR_…` `code`
 * (runner/errors.ts), its `details` and `Retry-After`; the common statuses have their own subclass so
 * callers can `instanceof` rather than compare numbers. A request that got no answer is a
 * `BosunNetworkError`; a `wait()` that ran out of time is a `BosunTimeoutError`.
 *
 * No imports with side effects: the client runs in other projects (no pino, no NATS).
 */
import type { ErrorCode } from '../runner/errors.js'

/** An API error code (`BOSUN_ERR_…`), or any other string for an answer not in the API's shape. */
export type ApiErrorCode = ErrorCode | (string & {})

/** Every error the client throws. */
export class BosunClientError extends Error {
  override readonly name: string = 'BosunClientError'
}

export interface ApiErrorInit {
  status: number
  code: ApiErrorCode
  message: string
  details?: Record<string, unknown> | undefined
  /** The answer's `Retry-After`, in ms. */
  retryAfterMs?: number | undefined
  method: string
  path: string
}

/** The API answered with an error (`{ statusCode, code, message, details? }`). */
export class BosunApiError extends BosunClientError {
  override readonly name: string = 'BosunApiError'
  readonly status: number
  readonly code: ApiErrorCode
  readonly details: Record<string, unknown> | undefined
  readonly retryAfterMs: number | undefined
  /** The request: `POST /jobs`. */
  readonly request: string
  constructor(init: ApiErrorInit) {
    super(`${init.method} ${init.path}: ${init.status} ${init.code}: ${init.message}`)
    this.status = init.status
    this.code = init.code
    this.details = init.details
    this.retryAfterMs = init.retryAfterMs
    this.request = `${init.method} ${init.path}`
  }
}

/** 400: malformed JSON, unknown properties, wrong types, a bad cursor (`details.field`, `details.index`). */
export class BosunValidationError extends BosunApiError {
  override readonly name: string = 'BosunValidationError'
}
/** 401: missing or wrong bearer token. */
export class BosunUnauthorizedError extends BosunApiError {
  override readonly name: string = 'BosunUnauthorizedError'
}
/** 404: unknown job (BOSUN_ERR_JOB_NOT_FOUND) or function no worker has (BOSUN_ERR_UNKNOWN_FUNCTION). */
export class BosunNotFoundError extends BosunApiError {
  override readonly name: string = 'BosunNotFoundError'
}
/** 409: e.g. BOSUN_ERR_JOB_NOT_RETRYABLE (`details.state`), BOSUN_ERR_IDEMPOTENCY_CONFLICT. */
export class BosunConflictError extends BosunApiError {
  override readonly name: string = 'BosunConflictError'
}
/** 429: BOSUN_ERR_RATE_LIMITED or BOSUN_ERR_QUEUE_FULL, after the client's own retries. */
export class BosunRateLimitedError extends BosunApiError {
  override readonly name: string = 'BosunRateLimitedError'
}
/** 503: no boss, a lost connection, a slow store — after the client's own retries where they were safe. */
export class BosunUnavailableError extends BosunApiError {
  override readonly name: string = 'BosunUnavailableError'
}

/** No answer: connection refused or reset, DNS, a request timeout. `cause` is what fetch threw. */
export class BosunNetworkError extends BosunClientError {
  override readonly name: string = 'BosunNetworkError'
  constructor(
    message: string,
    /** Whether the request may have reached the API (false: it surely did not, e.g. refused). */
    readonly maybeSent: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** `wait()` ran out of time; `job` is the job as last read (still unfinished). */
export class BosunTimeoutError extends BosunClientError {
  override readonly name: string = 'BosunTimeoutError'
  constructor(
    message: string,
    readonly job: unknown,
  ) {
    super(message)
  }
}

const byStatus: Record<number, typeof BosunApiError> = {
  400: BosunValidationError,
  401: BosunUnauthorizedError,
  404: BosunNotFoundError,
  409: BosunConflictError,
  429: BosunRateLimitedError,
  503: BosunUnavailableError,
}

/** `Retry-After` (delta seconds or an HTTP date) in ms; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (header === null || header.trim() === '') return undefined
  const s = header.trim()
  if (/^\d+$/.test(s)) return Number(s) * 1000
  const at = Date.parse(s)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** The error for a non-2xx answer; a body that is not the API's error shape still gives status and text. */
export function apiError(res: { status: number; headers: Headers }, text: string, method: string, path: string) {
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const init: ApiErrorInit = {
    status: res.status,
    code: typeof b.code === 'string' ? b.code : `HTTP_${res.status}`,
    message: typeof b.message === 'string' ? b.message : text.slice(0, 200) || `HTTP ${res.status}`,
    details: typeof b.details === 'object' && b.details !== null ? (b.details as Record<string, unknown>) : undefined,
    retryAfterMs: retryAfterMs(res.headers.get('retry-after')),
    method,
    path,
  }
  const Class = byStatus[res.status] ?? BosunApiError
  return new Class(init)
}
