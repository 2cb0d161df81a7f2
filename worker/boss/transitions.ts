/**
 * The pure rules of a job's life at the boss: what a dispatch, a finished attempt, a cancel, a lost
 * worker or a refused dispatch turns a record into, which reported result applies to a record, and
 * how a record too large for the store is cut to fit. No I/O, no clock of its own: every rule is
 * unit-testable, and every change of state goes through commit.ts with one of these.
 */
import { errors } from '../../runner/index.js'
import { MAX_DELAY_MS, withFields, type Job, type JobError } from '../../jobs/model.js'
import type { AttemptResult } from '../../jobs/protocol.js'
import { attemptEntry, withEntry, type AttemptOutcomeName } from '../../jobs/attempts.js'
import { retryDelayMs } from './backoff.js'

/** Shortest delay of a RetryLaterError (a function that always defers costs at most one run a second). */
export const MIN_RETRY_LATER_MS = 1000

/** How many times a job may be re-queued because its worker vanished before it fails. */
export const MAX_WORKER_LOSSES = 5

// Not `delete`: it turns the object into a slow dictionary. Object rest is a slow path in V8 too, so
// records without the field (most of them) are returned as they are, not copied.
function withoutRunAt(job: Job): Job {
  if (!('runAt' in job)) return job
  const { runAt: _runAt, ...rest } = job
  return rest
}

/** The job with the finished attempt's last progress (absent when it reported none). */
function withProgress(job: Job, r: AttemptResult): Job {
  return r.progress === undefined ? job : withFields(job, { progress: r.progress })
}

function withoutError(job: Job): Job {
  if (!('error' in job)) return job
  const { error: _error, ...rest } = job
  return rest
}

/** A job whose cancel was requested, ended instead of being queued again. */
function cancelled(job: Job, now: Date, message: string): Job {
  const e = errors.FUNCTION_CANCELLED(message)
  return withFields(withoutRunAt(job), {
    state: 'cancelled',
    error: { message: e.message, code: e.code },
    finishedAt: now.toISOString(),
  })
}

/** The record as dispatched: one more attempt started on `worker`. */
export function started(job: Job, worker: string, now: Date): Job {
  return withFields(withoutRunAt(job), {
    state: 'running',
    attempts: job.attempts + 1,
    worker,
    startedAt: now.toISOString(),
  })
}

/** A running attempt a worker reported (inventory at takeover): adopted as it is, never started again. */
export function adopted(job: Job, worker: string, attempt: number, startedAt: string): Job {
  return withFields(withoutRunAt(job), {
    state: 'running',
    worker,
    attempts: Math.max(job.attempts, attempt),
    startedAt,
  })
}

/** A dispatch refused or never delivered: back to the queue, attempt not counted — or cancelled, if asked. */
export function notStarted(job: Job, now: Date): Job {
  if (job.cancelRequested) return cancelled(job, now, 'cancelled before it ran')
  return withFields(job, { state: 'queued', attempts: Math.max(0, job.attempts - 1) })
}

/**
 * The worker running the job vanished (its ZooKeeper session ended and it does not answer on NATS)
 * or handed the job back on shutdown: requeue at once without counting a failure — unless its cancel
 * was requested (then it ends cancelled) or it has happened too often (then it fails).
 */
export function lostWorker(job: Job, losses: number, now: Date, epoch: number = job.epoch): Job {
  const lost = errors.WORKER_LOST('its worker stopped or vanished before the attempt finished')
  const ended = withFields(job, { history: historyAfter(job, epoch, now.toISOString(), 'lost', lost) })
  if (job.cancelRequested) return cancelled(ended, now, 'cancelled; its worker stopped before it finished')
  if (losses >= MAX_WORKER_LOSSES) {
    const e = errors.WORKER_LOST(`the worker running this job was lost ${losses} times`)
    return withFields(ended, {
      state: 'failed',
      error: { message: e.message, code: e.code },
      finishedAt: now.toISOString(),
    })
  }
  return withFields(withoutRunAt(ended), { state: 'queued', attempts: Math.max(0, job.attempts - 1) })
}

/** The job's history with its current attempt (`job.attempts` on `job.worker`) ended as `outcome`. */
function historyAfter(
  job: Job,
  epoch: number,
  finishedAt: string,
  outcome: AttemptOutcomeName,
  error: { message: string; code?: string } | undefined,
) {
  const entry = attemptEntry({
    run: job.run,
    attempt: job.attempts,
    worker: job.worker,
    epoch,
    startedAt: job.startedAt,
    finishedAt,
    outcome,
    error,
  })
  return withEntry(job.history, entry)
}

/**
 * The record after a finished attempt (`job.attempts` is the attempt that finished). `losses`: how
 * often its worker was lost before (a handed-back attempt counts as one more).
 */
export function afterAttempt(
  job: Job,
  r: AttemptResult,
  now: Date,
  opts: { losses?: number; random?: () => number } = {},
): Job {
  const random = opts.random ?? Math.random
  const finishedAt = r.finishedAt
  if (r.outcome.ok === false && r.outcome.handedBack)
    return lostWorker(
      withFields(job, { worker: r.worker, startedAt: r.startedAt }),
      (opts.losses ?? 0) + 1,
      now,
      r.epoch,
    )
  const code = r.outcome.ok ? undefined : r.outcome.error.code
  const deferred = code === errors.RETRY_LATER.code && !job.cancelRequested
  const outcome: AttemptOutcomeName = r.outcome.ok
    ? 'succeeded'
    : job.cancelRequested
      ? 'cancelled'
      : deferred
        ? 'deferred'
        : 'failed'
  const attempt = withFields(job, { worker: r.worker, startedAt: r.startedAt })
  job = withFields(job, {
    history: historyAfter(attempt, r.epoch, finishedAt, outcome, r.outcome.ok ? undefined : r.outcome.error),
  })
  if (r.outcome.ok) {
    return withProgress(
      withFields(withoutError(withoutRunAt(job)), {
        state: 'succeeded',
        result: r.outcome.result ?? null,
        worker: r.worker,
        startedAt: r.startedAt,
        finishedAt,
      }),
      r,
    )
  }
  const error = r.outcome.error
  if (deferred) {
    // RetryLaterError: again after its delay, the attempt not counted against maxAttempts.
    const delay = Math.min(MAX_DELAY_MS, Math.max(MIN_RETRY_LATER_MS, error.retryInMs ?? 0))
    const runAt = new Date(now.getTime() + delay).toISOString()
    return withFields(job, { state: 'queued', attempts: Math.max(0, job.attempts - 1), error, worker: r.worker, runAt })
  }
  if (job.cancelRequested) {
    const ended = withFields(withoutRunAt(job), {
      state: 'cancelled',
      error,
      worker: r.worker,
      startedAt: r.startedAt,
      finishedAt,
    })
    return withProgress(ended, r)
  }
  // UnrecoverableError: failed now, whatever attempts are left.
  if (job.attempts < job.maxAttempts && code !== errors.UNRECOVERABLE.code) {
    const runAt = new Date(now.getTime() + retryDelayMs(job.attempts, { random })).toISOString()
    return withFields(job, { state: 'queued', error, worker: r.worker, runAt })
  }
  return withProgress(
    withFields(withoutRunAt(job), { state: 'failed', error, worker: r.worker, startedAt: r.startedAt, finishedAt }),
    r,
  )
}

/** A cancel request: a queued job ends cancelled at once; a running one is marked (its worker is told to abort). */
export function cancelRequested(job: Job, now: Date): Job {
  if (job.state === 'queued') return { ...cancelled(job, now, 'cancelled before it ran'), cancelRequested: true }
  return withFields(job, { cancelRequested: true })
}

/** A job whose own record cannot be sent to a worker (payload near the NATS limit). */
export function undeliverable(job: Job, now: Date): Job {
  const e = errors.BODY_TOO_LARGE('the job is too large to dispatch over NATS')
  return {
    ...withoutRunAt(job),
    state: 'failed',
    error: { message: e.message, code: e.code },
    finishedAt: now.toISOString(),
  }
}

/**
 * Which record a reported attempt may change:
 * - `current`: the attempt the record says runs on that worker;
 * - `late`: a queued job's attempt that was believed lost (its worker was judged gone, or the
 *   dispatch's reply was lost) reported by the worker it last ran on — the job is done, take it;
 * - `obsolete`: anything else (the job is final, runs elsewhere, or the attempt is not one we know).
 */
export function resultApplies(job: Job, r: AttemptResult): 'current' | 'late' | 'obsolete' {
  if ((r.run ?? 0) !== (job.run ?? 0)) return 'obsolete' // an attempt of another run of the job
  if (job.state === 'running') return job.worker === r.worker && job.attempts === r.attempt ? 'current' : 'obsolete'
  if (job.state === 'queued') return job.worker === r.worker && r.attempt === job.attempts + 1 ? 'late' : 'obsolete'
  return 'obsolete'
}

// ---- records too large for the store ----------------------------------------------------------

const encoder = new TextEncoder()
const decoder = new TextDecoder()

function byteSize(job: Job): number {
  return encoder.encode(JSON.stringify(job)).length
}

/** `text` cut to at most `maxBytes` of UTF-8, at a character boundary, marked with an ellipsis. */
export function cutToBytes(text: string, maxBytes: number): string {
  const bytes = encoder.encode(text)
  if (bytes.length <= maxBytes) return text
  let end = Math.max(0, maxBytes - 3) // room for '…'
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end-- // never split a multi-byte character
  return decoder.decode(bytes.subarray(0, end)) + '…'
}

const MAX_ERROR_FIELD_BYTES = 200

function cutError(error: JobError, messageBytes: number): JobError {
  const out: JobError = { message: cutToBytes(error.message, messageBytes) }
  if (error.code !== undefined) out.code = cutToBytes(error.code, MAX_ERROR_FIELD_BYTES)
  if (error.name !== undefined) out.name = cutToBytes(error.name, MAX_ERROR_FIELD_BYTES)
  return out
}

/**
 * The record cut to at most `maxBytes` encoded (the store's limit): first the result goes (the job
 * then fails with BOSUN_ERR_RECORD_TOO_LARGE), then the error message is cut by bytes, and last the
 * payload goes. A record that fits is returned unchanged; a record that had to lose anything but
 * the tail of its error message ends failed, with a clear code.
 */
export function fitRecord(job: Job, maxBytes: number, now: Date): Job {
  let size = byteSize(job)
  if (size <= maxBytes) return job
  const original = size
  const tooLarge = (what: string) => {
    const e = errors.RECORD_TOO_LARGE(
      `the job record (${original} bytes) is over the store's limit of ${maxBytes} bytes; ${what}`,
    )
    return { message: e.message, code: e.code }
  }
  let next: Job = job
  if ('result' in next) {
    const { result: _result, ...rest } = next
    next = {
      ...rest,
      state: 'failed',
      error: tooLarge('its result was dropped'),
      finishedAt: next.finishedAt ?? now.toISOString(),
    }
    size = byteSize(next)
  }
  for (let i = 0; i < 4 && size > maxBytes && next.error !== undefined; i++) {
    const messageBytes = encoder.encode(next.error.message).length
    const keep = Math.max(0, messageBytes - (size - maxBytes) - 64)
    next = { ...next, error: cutError(next.error, keep) }
    size = byteSize(next)
  }
  if (size > maxBytes) {
    const finishedAt = next.finishedAt ?? now.toISOString()
    next = {
      ...withoutRunAt(next),
      state: 'failed',
      payload: null,
      error: tooLarge('its payload was dropped from the record'),
      finishedAt,
    }
    size = byteSize(next)
  }
  if (size > maxBytes) {
    // Only the boss's own fields are left: nothing a user sent; keep the smallest failed record.
    const { result: _r, worker: _w, idempotencyKey: _k, ...rest } = next
    next = { ...rest, error: tooLarge('it was cut to its bare fields') }
  }
  return next
}
