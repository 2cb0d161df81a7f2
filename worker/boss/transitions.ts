/**
 * Pure state transitions of a job record at the boss: what a finished attempt, a cancel, a lost
 * worker or a dispatch turns the record into. No I/O here, so every rule is unit-testable.
 */
import { errors } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import type { AttemptResult } from '../../jobs/protocol.js'
import { retryDelayMs } from './backoff.js'

/** How many times a job may be re-queued because its worker vanished before it fails. */
export const MAX_WORKER_LOSSES = 5

/** The record as dispatched: one more attempt started on `worker`. */
export function started(job: Job, worker: string, now: Date): Job {
  const { runAt: _runAt, ...rest } = job // not `delete`: it turns the object into a slow dictionary
  return { ...rest, state: 'running', attempts: job.attempts + 1, worker, startedAt: now.toISOString() }
}

/** A dispatch that was refused or never reached the worker: back to the queue, attempt not counted. */
export function notStarted(job: Job): Job {
  return { ...job, state: 'queued', attempts: Math.max(0, job.attempts - 1) }
}

/**
 * The worker running the job vanished (its ZooKeeper session ended) or handed the job back on
 * shutdown: requeue at once without counting a failure — unless it has happened too often.
 */
export function lostWorker(job: Job, losses: number, now: Date): Job {
  if (losses >= MAX_WORKER_LOSSES) {
    const e = errors.WORKER_LOST(`the worker running this job was lost ${losses} times`)
    return { ...job, state: 'failed', error: { message: e.message, code: e.code }, finishedAt: now.toISOString() }
  }
  const { runAt: _runAt, ...rest } = job
  return { ...rest, state: 'queued', attempts: Math.max(0, job.attempts - 1) }
}

/** The record after a finished attempt. */
export function afterAttempt(job: Job, r: AttemptResult, now: Date, random: () => number = Math.random): Job {
  const finishedAt = r.finishedAt
  if (r.outcome.ok) {
    const next: Job = { ...job, state: 'succeeded', result: r.outcome.result ?? null, worker: r.worker, startedAt: r.startedAt, finishedAt }
    delete next.error
    return next
  }
  const error = r.outcome.error
  if (job.cancelRequested) return { ...job, state: 'cancelled', error, worker: r.worker, startedAt: r.startedAt, finishedAt }
  if (job.attempts < job.maxAttempts) {
    const runAt = new Date(now.getTime() + retryDelayMs(job.attempts, { random })).toISOString()
    return { ...job, state: 'queued', error, worker: r.worker, runAt }
  }
  return { ...job, state: 'failed', error, worker: r.worker, startedAt: r.startedAt, finishedAt }
}

/** A cancel of a queued job. */
export function cancelledWhileQueued(job: Job, now: Date): Job {
  const e = errors.FUNCTION_CANCELLED('cancelled before it ran')
  return { ...job, state: 'cancelled', error: { message: e.message, code: e.code }, finishedAt: now.toISOString(), cancelRequested: true }
}

/** Longest error message kept in a job record. */
export const MAX_ERROR_MESSAGE_CHARS = 4000

/**
 * A final record that the store refused as too large (a result near the limit on top of a large
 * payload, or a huge error message): fail it with a clear error instead of retrying forever.
 */
export function shrunk(job: Job, bytes: number | undefined, now: Date): Job {
  const next: Job = { ...job }
  if ('result' in next) {
    delete next.result
    const e = errors.RESULT_TOO_LARGE(`the job's result made its record too large to store${bytes ? ` (${bytes} bytes)` : ''}`)
    return { ...next, state: 'failed', error: { message: e.message, code: e.code }, finishedAt: next.finishedAt ?? now.toISOString() }
  }
  if (next.error) next.error = { ...next.error, message: next.error.message.slice(0, MAX_ERROR_MESSAGE_CHARS) }
  return next
}

/** A job whose own record cannot be sent to a worker (payload near the NATS limit). */
export function undeliverable(job: Job, now: Date): Job {
  const e = errors.BODY_TOO_LARGE('the job is too large to dispatch over NATS')
  return { ...job, state: 'failed', error: { message: e.message, code: e.code }, finishedAt: now.toISOString() }
}
