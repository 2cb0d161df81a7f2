/**
 * The deliverer's decisions, apart from NATS and HTTP so they can be tested alone
 * (test/boss/callback-plan.test.ts): what to do with a delivery task given the job's final record
 * and the stored delivery status, and what an attempt's outcome makes of the delivery.
 */
import type { Job } from '../../jobs/model.js'
import { callbackUrlProblem } from '../../jobs/callbacks/policy.js'
import type { CallbackStatus, CallbackTask } from '../../jobs/callbacks/store.js'
import type { CallbackSettings } from '../callback-config.js'
import { retryDelayMs } from './backoff.js'

/** The first wait for a final record not stored yet (it normally follows its task within milliseconds). */
const FINAL_WAIT_MIN_MS = 200
const FINAL_WAIT_MAX_MS = 5000

export type TaskStep =
  /** The job's final record (of this run) is not stored yet: ask again later. */
  | { do: 'wait'; delayMs: number }
  /** Nothing to deliver (a newer run, already delivered or failed, no callbackUrl): remove the task. */
  | { do: 'drop'; why: string }
  /** The delivery ends as failed (too old, host no longer allowed): record it, remove the task. */
  | { do: 'fail'; why: string; attempts: number; lastStatus?: number }
  | { do: 'post'; job: Job; attempt: number }

export interface TaskInput {
  task: CallbackTask
  /** The job's final record (null: none yet). */
  final: Job | null
  status: CallbackStatus | null
  /** When the task was queued (ms since the epoch). */
  queuedAt: number
  /** Times the task was handed to a deliverer so far (1 the first time). */
  deliveries: number
  now: number
  settings: Pick<CallbackSettings, 'allow' | 'maxAgeMs'>
}

export function planTask(x: TaskInput): TaskStep {
  const { task, final, status, settings } = x
  const run = final ? (final.run ?? 0) : -1
  if (run > task.run) return { do: 'drop', why: 'a newer run of the job replaced this one' }
  const sameRun = status !== null && status.run === task.run
  const attempts = sameRun ? status.attempts : 0
  const last = sameRun && status.lastStatus !== undefined ? { lastStatus: status.lastStatus } : {}
  if (final === null || run < task.run) {
    if (x.now - x.queuedAt > settings.maxAgeMs)
      return { do: 'fail', why: 'the job never finished within BOSUN_CALLBACK_MAX_AGE_MS', attempts, ...last }
    const delayMs = Math.min(FINAL_WAIT_MAX_MS, FINAL_WAIT_MIN_MS * 2 ** Math.max(0, x.deliveries - 1))
    return { do: 'wait', delayMs }
  }
  if (final.callbackUrl === undefined) return { do: 'drop', why: 'the job has no callbackUrl' }
  if (sameRun && status.state !== 'pending') return { do: 'drop', why: `already ${status.state}` }
  if (x.now - finishedAt(final, x.queuedAt) > settings.maxAgeMs)
    return { do: 'fail', why: 'BOSUN_CALLBACK_MAX_AGE_MS passed since the job finished', attempts, ...last }
  const problem = callbackUrlProblem(final.callbackUrl, settings.allow)
  if (problem !== null) return { do: 'fail', why: `callbackUrl ${problem}`, attempts, ...last }
  return { do: 'post', job: final, attempt: attempts + 1 }
}

/** What one POST answered: its HTTP status, or why there was none (timeout, connection error). */
export interface PostOutcome {
  status?: number
  error?: string
}

export type AttemptStep = { state: 'delivered' } | { state: 'pending'; delayMs: number } | { state: 'failed' }

/** A 2xx delivers; anything else (3xx included: redirects are not followed) is retried until the max age. */
export function afterAttempt(
  outcome: PostOutcome,
  attempt: number,
  job: Job,
  now: number,
  settings: Pick<CallbackSettings, 'maxAgeMs' | 'backoffMs' | 'backoffMaxMs'>,
  random: () => number = Math.random,
): AttemptStep {
  if (outcome.status !== undefined && outcome.status >= 200 && outcome.status < 300) return { state: 'delivered' }
  const delayMs = retryDelayMs(attempt, { baseMs: settings.backoffMs, maxMs: settings.backoffMaxMs, random })
  if (now + delayMs - finishedAt(job, now) > settings.maxAgeMs) return { state: 'failed' }
  return { state: 'pending', delayMs }
}

/** Why an attempt did not deliver, for the status record. */
export function attemptError(outcome: PostOutcome): string | undefined {
  if (outcome.error !== undefined) return outcome.error
  const s = outcome.status
  if (s === undefined || (s >= 200 && s < 300)) return undefined
  if (s >= 300 && s < 400) return `HTTP ${s}: redirects are not followed`
  return `HTTP ${s}`
}

function finishedAt(job: Job, fallback: number): number {
  const t = job.finishedAt === undefined ? NaN : Date.parse(job.finishedAt)
  return Number.isFinite(t) ? t : fallback
}
