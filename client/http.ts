/**
 * The typed HTTP client, exported as `bosun/client`: `new Bosun({ url, token })` submits, reads,
 * lists, cancels, retries and waits for jobs over the HTTP API (README "Using it"), and follows the
 * cluster events' SSE stream. For any Node ≥ 20 project: it uses the global `fetch` and imports
 * nothing with side effects from the server (only types).
 *
 * Retries (`maxRetries`, default 3), honouring `Retry-After` (capped by `maxRetryDelayMs`):
 * - 429 on every request: the rate limit and the queue limit refuse before anything is applied;
 * - 503 BOSUN_ERR_NO_BOSS / BOSUN_ERR_UNAVAILABLE on a submit: the API checks its connections and
 *   the boss before it writes;
 * - any other 503, and network errors, only on requests that are safe to repeat: GET, DELETE
 *   (cancel), a submit whose every job carries an `idempotencyKey`, a retry with a `requestId`.
 * Anything else is thrown at once as a BosunApiError subclass (client/http-errors.ts).
 */
import type { JobSpec, JobState } from '../jobs/model.js'
import type { ClusterEvent } from '../runner/events/model.js'
import type {
  BosunOptions,
  EventsOptions,
  Job,
  JobLogs,
  JobPage,
  ListQuery,
  RetryManyQuery,
  RetryOptions,
  SubmitOptions,
  WaitOptions,
} from './types.js'
import {
  apiError,
  BosunApiError,
  BosunClientError,
  BosunNetworkError,
  BosunNotFoundError,
  BosunTimeoutError,
} from './http-errors.js'
import { readSse, SseParser } from './sse.js'
import { backoff, either, sleep } from './timing.js'

export {
  BosunApiError,
  BosunClientError,
  BosunConflictError,
  BosunNetworkError,
  BosunNotFoundError,
  BosunRateLimitedError,
  BosunTimeoutError,
  BosunUnauthorizedError,
  BosunUnavailableError,
  BosunValidationError,
  type ApiErrorCode,
} from './http-errors.js'
export type * from './types.js'

interface Call {
  method: 'GET' | 'POST' | 'DELETE'
  path: string
  body?: unknown
  /** Safe to send twice: retried on any 503 and on network errors. */
  repeatable: boolean
  /** A submit: 503 NO_BOSS / UNAVAILABLE were answered before anything was written. */
  submit?: boolean
  timeoutMs?: number
  /** The caller's: aborts the request too. */
  signal?: AbortSignal | undefined
}

/** Longest wait of one long poll of `wait()` (the API's default API_MAX_WAIT_MS is 60 s). */
const LONG_POLL_MS = 20_000
/** A long poll answered this much before its wait ran out, with the job not final, was not held. */
const EARLY_MS = 50

const SUBMIT_NOT_APPLIED: ReadonlySet<string> = new Set(['BOSUN_ERR_NO_BOSS', 'BOSUN_ERR_UNAVAILABLE'])
const FINAL: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled'])

const enc = encodeURIComponent

export class Bosun {
  private readonly base: string
  private readonly token: string | undefined
  private readonly maxRetries: number
  private readonly maxRetryDelayMs: number
  private readonly requestTimeoutMs: number

  constructor(opts: BosunOptions) {
    this.base = opts.url.replace(/\/+$/, '')
    this.token = opts.token
    this.maxRetries = opts.maxRetries ?? 3
    this.maxRetryDelayMs = opts.maxRetryDelayMs ?? 30_000
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 30_000
  }

  /** Submit one job: 202 stored (or, with `waitMs`, the job when it finished in time). */
  async submit<P = unknown, R = unknown>(fn: string, payload: P, opts: SubmitOptions = {}): Promise<Job<P, R>> {
    const { waitMs, ...spec } = opts
    const path = waitMs === undefined ? '/jobs' : `/jobs?wait=${waitMs}`
    return this.call<Job<P, R>>({
      method: 'POST',
      path,
      body: { function: fn, payload, ...spec },
      repeatable: spec.idempotencyKey !== undefined,
      submit: true,
      timeoutMs: this.requestTimeoutMs + (waitMs ?? 0),
    })
  }

  /** Submit 1–1,000 jobs at once (validated whole first): `{ id, state }` per job, in order. */
  async submitBatch(specs: JobSpec[]): Promise<{ id: string; state: JobState }[]> {
    const r = await this.call<{ jobs: { id: string; state: JobState }[] }>({
      method: 'POST',
      path: '/jobs/batch',
      body: { jobs: specs },
      repeatable: specs.every((s) => s.idempotencyKey !== undefined),
      submit: true,
    })
    return r.jobs
  }

  /** The job, or null when the API does not know it (never did, or its retention passed). */
  async get<P = unknown, R = unknown>(id: string): Promise<Job<P, R> | null> {
    try {
      return await this.call<Job<P, R>>({ method: 'GET', path: `/jobs/${enc(id)}`, repeatable: true })
    } catch (err) {
      if (err instanceof BosunNotFoundError && err.code === 'BOSUN_ERR_JOB_NOT_FOUND') return null
      throw err
    }
  }

  /** The job's kept ctx.log lines (none when it never logged); unknown job: BosunNotFoundError. */
  async logs(id: string): Promise<JobLogs> {
    return this.call<JobLogs>({ method: 'GET', path: `/jobs/${enc(id)}/logs`, repeatable: true })
  }

  /** One page of GET /jobs (newest first). */
  async page<P = unknown, R = unknown>(q: ListQuery = {}): Promise<JobPage<P, R>> {
    const params = new URLSearchParams()
    if (q.state !== undefined) params.set('state', q.state)
    if (q.function !== undefined) params.set('function', q.function)
    if (q.limit !== undefined) params.set('limit', String(q.limit))
    if (q.cursor !== undefined) params.set('cursor', q.cursor)
    const qs = params.toString()
    return this.call<JobPage<P, R>>({ method: 'GET', path: qs ? `/jobs?${qs}` : '/jobs', repeatable: true })
  }

  /** Every page of the listing, following `next` (one request per page, as it is consumed). */
  async *pages<P = unknown, R = unknown>(q: ListQuery = {}): AsyncGenerator<JobPage<P, R>> {
    let cursor = q.cursor
    do {
      const p = await this.page<P, R>(cursor === undefined ? q : { ...q, cursor })
      yield p
      cursor = p.next
    } while (cursor !== undefined)
  }

  /** Every matching job, newest first, page by page (`limit` is the page size). */
  async *list<P = unknown, R = unknown>(q: ListQuery = {}): AsyncGenerator<Job<P, R>> {
    for await (const p of this.pages<P, R>(q)) yield* p.jobs
  }

  /**
   * Cancel: a queued job never runs; a running one has its signal aborted (the job answered is still
   * `running` until it stops); a finished one is answered unchanged. Unknown: BosunNotFoundError.
   */
  async cancel<P = unknown, R = unknown>(id: string): Promise<Job<P, R>> {
    return this.call<Job<P, R>>({ method: 'DELETE', path: `/jobs/${enc(id)}`, repeatable: true })
  }

  /** Run a failed or cancelled job again (same id, `run` + 1); else BosunConflictError. */
  async retry<P = unknown, R = unknown>(id: string, opts: RetryOptions = {}): Promise<Job<P, R>> {
    return this.call<Job<P, R>>({
      method: 'POST',
      path: `/jobs/${enc(id)}/retry`,
      body: opts,
      repeatable: opts.requestId !== undefined,
    })
  }

  /** Redrive in bulk: up to `limit` jobs that ended in `state`, newest finished first. */
  async retryMany(q: RetryManyQuery): Promise<{ retried: number; ids: string[] }> {
    return this.call({ method: 'POST', path: '/jobs/retry', body: q, repeatable: q.requestId !== undefined })
  }

  /**
   * The job once it is final (succeeded, failed or cancelled — a failed job resolves, it does not
   * reject). Long polls GET /jobs/:id?wait (up to 20 s a request), so it resolves as the job ends; an
   * API that refuses the wait (an older one, or a lower API_MAX_WAIT_MS) is polled instead, every
   * `pollMs` growing to 2 s. BosunTimeoutError after `timeoutMs`, BosunNotFoundError for an unknown job.
   */
  async wait<P = unknown, R = unknown>(id: string, opts: WaitOptions): Promise<Job<P, R>> {
    const deadline = Date.now() + opts.timeoutMs
    let longPoll = true
    let every = opts.pollMs ?? 100
    for (;;) {
      opts.signal?.throwIfAborted()
      const waitMs = longPoll ? Math.max(0, Math.min(deadline - Date.now(), LONG_POLL_MS)) : 0
      const path = `/jobs/${enc(id)}${waitMs > 0 ? `?wait=${waitMs}` : ''}`
      let job: Job<P, R>
      const asked = Date.now()
      try {
        const timeoutMs = this.requestTimeoutMs + waitMs
        job = await this.call<Job<P, R>>({ method: 'GET', path, repeatable: true, timeoutMs, signal: opts.signal })
      } catch (err) {
        if (waitMs > 0 && err instanceof BosunApiError && err.status === 400) {
          longPoll = false
          continue
        }
        throw err
      }
      if (FINAL.has(job.state)) return job
      const left = deadline - Date.now()
      if (left <= 0) {
        throw new BosunTimeoutError(`job ${id} is still ${job.state} after ${opts.timeoutMs} ms`, job)
      }
      // A long poll held until its wait ran out asks again at once; one answered early (a proxy or a
      // server that does not hold it) is spaced like a poll, so it never spins.
      if (longPoll && Date.now() - asked >= waitMs - EARLY_MS) continue
      await sleep(Math.min(every, left), opts.signal)
      every = Math.min(2000, every * 1.5)
    }
  }

  /**
   * The cluster events, live (GET /cluster/events/stream). A dropped connection is opened again
   * with `Last-Event-ID`, so no retained event is missed or repeated; `maxRetries` failed reconnects
   * in a row end it with the error. Stop it with `signal` or by leaving a `for await` (break/return).
   */
  async *events(opts: EventsOptions = {}): AsyncGenerator<ClusterEvent> {
    const ctl = new AbortController()
    const onAbort = () => ctl.abort()
    opts.signal?.addEventListener('abort', onAbort, { once: true })
    if (opts.signal?.aborted) ctl.abort()
    const parser = new SseParser(opts.lastEventId)
    const types = opts.types ? new Set<string>(opts.types) : undefined
    let failures = 0
    try {
      while (!ctl.signal.aborted) {
        let body: AsyncIterable<Uint8Array>
        try {
          const headers = this.headers({ accept: 'text/event-stream' })
          if (parser.lastEventId !== undefined) headers['last-event-id'] = parser.lastEventId
          const res = await fetch(`${this.base}/cluster/events/stream`, { headers, signal: ctl.signal })
          if (!res.ok || !res.body) {
            const err = apiError(res, await res.text(), 'GET', '/cluster/events/stream')
            if ((res.status !== 429 && res.status !== 503) || failures >= this.maxRetries) throw err
            await sleep(this.delay(err.retryAfterMs, failures++, err), ctl.signal)
            continue
          }
          body = res.body
          parser.reset()
          failures = 0
        } catch (err) {
          if (ctl.signal.aborted) return
          if (!(err instanceof TypeError)) throw err
          if (failures >= this.maxRetries) throw this.networkError('GET', '/cluster/events/stream', err)
          await sleep(backoff(failures++), ctl.signal)
          continue
        }
        try {
          for await (const msg of readSse(body, parser)) {
            const e = JSON.parse(msg.data) as ClusterEvent
            if (types === undefined || types.has(e.type)) yield e
          }
        } catch (err) {
          if (ctl.signal.aborted) return
          if (!(err instanceof TypeError) && !(err instanceof Error && /terminated|aborted/i.test(err.message)))
            throw err
        }
        // The stream ended (the API restarted, a proxy cut it): open it again after the server's retry.
        await sleep(parser.retryMs ?? 1000, ctl.signal).catch(() => undefined)
      }
    } finally {
      opts.signal?.removeEventListener('abort', onAbort)
      ctl.abort()
    }
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.token === undefined ? extra : { ...extra, authorization: `Bearer ${this.token}` }
  }

  private networkError(method: string, path: string, err: unknown): BosunNetworkError {
    const cause = (err as { cause?: { code?: string } }).cause
    const refused = cause?.code === 'ECONNREFUSED' || cause?.code === 'ENOTFOUND'
    const what = err instanceof Error ? (cause instanceof Error ? cause.message : err.message) : String(err)
    return new BosunNetworkError(`${method} ${path}: no answer: ${what}`, !refused, { cause: err })
  }

  /** The wait before retry `attempt` (0-based): Retry-After when given, else backoff; over the cap throws. */
  private delay(retryAfterMs: number | undefined, attempt: number, err: Error): number {
    if (retryAfterMs === undefined) return backoff(attempt)
    if (retryAfterMs > this.maxRetryDelayMs) throw err
    return retryAfterMs
  }

  private async call<T>(c: Call): Promise<T> {
    const headers = this.headers(c.body === undefined ? {} : { 'content-type': 'application/json' })
    for (let attempt = 0; ; attempt++) {
      let res: Response
      let text: string
      const link = either(AbortSignal.timeout(c.timeoutMs ?? this.requestTimeoutMs), c.signal)
      try {
        res = await fetch(this.base + c.path, {
          method: c.method,
          headers,
          body: c.body === undefined ? null : JSON.stringify(c.body),
          signal: link.signal,
        })
        text = await res.text()
      } catch (err) {
        c.signal?.throwIfAborted()
        const e = this.networkError(c.method, c.path, err)
        if ((c.repeatable || !e.maybeSent) && attempt < this.maxRetries) {
          await sleep(backoff(attempt))
          continue
        }
        throw e
      } finally {
        link.done()
      }
      if (res.ok) {
        try {
          return (text === '' ? undefined : JSON.parse(text)) as T
        } catch {
          throw new BosunClientError(`${c.method} ${c.path}: ${res.status} with a body that is not JSON`)
        }
      }
      const err = apiError(res, text, c.method, c.path)
      const retryable =
        res.status === 429 ||
        (res.status === 503 && (c.repeatable || (c.submit === true && SUBMIT_NOT_APPLIED.has(err.code))))
      if (!retryable || attempt >= this.maxRetries) throw err
      await sleep(this.delay(err.retryAfterMs, attempt, err))
    }
  }
}
