/**
 * What job functions may import (`import { UnrecoverableError, RetryLaterError } from 'bosun/functions'`,
 * README "Job functions"): errors that steer the job instead of failing it as usual. They cross the
 * worker-thread boundary as their `code` (and `retryInMs`), which the boss acts on
 * (worker/boss/transitions.ts). No other import: a function thread loads this file.
 */
import { errors } from '../runner/errors.js'

/** Throw to fail the job now: no retry, whatever attempts are left. */
export class UnrecoverableError extends Error {
  readonly code = errors.UNRECOVERABLE.code
  constructor(message: string) {
    super(message)
    this.name = 'UnrecoverableError'
  }
}

/**
 * Throw to run the job again after `delayMs` (clamped to 1 s … 30 days), without counting the
 * attempt as a failure of the function (the job's attempts are not used up).
 */
export class RetryLaterError extends Error {
  readonly code = errors.RETRY_LATER.code
  readonly retryInMs: number
  constructor(message: string, delayMs: number) {
    super(message)
    this.name = 'RetryLaterError'
    this.retryInMs = Number.isFinite(delayMs) && delayMs > 0 ? Math.round(delayMs) : 0
  }
}
