/**
 * The API → boss request that retries jobs that ended (POST /jobs/:id/retry, POST /jobs/retry):
 * only the acting boss reopens a job (worker/boss/redrives.ts), so two requests, or two APIs, never
 * reopen the same run twice. Both sides parse what they receive; garbage is a BAD_MESSAGE.
 */
import { errors } from '../runner/errors.js'
import { MAX_MAX_ATTEMPTS, JOB_STATES, type Job, type JobState } from './model.js'
import { isObject } from './parse.js'
import { jobShapeProblem } from './store-codec.js'

/** API → boss (request): retry these jobs. */
export const RETRY_JOBS = 'boss.retry'

/** Most jobs one request retries (POST /jobs/retry's `limit`). */
export const MAX_RETRY_JOBS = 1000
export const MAX_REQUEST_ID_LENGTH = 256

export interface RetryJobsBody {
  ids: string[]
  /** Attempts of the new run (default: the job's own maxAttempts). */
  maxAttempts?: number
  /** A repeated request with this id is answered as the first, not applied again. */
  requestId: string
}

/**
 * Per job: reopened (the job as it stands now), not in a state that can be retried, unknown, or
 * `busy`: it ended an instant ago and its final record is not settled yet (ask again shortly).
 */
export type RetryOutcome =
  | { id: string; outcome: 'retried'; job: Job }
  | { id: string; outcome: 'conflict'; state: JobState }
  | { id: string; outcome: 'not-found' }
  | { id: string; outcome: 'busy' }

export interface RetryJobsReply {
  results: RetryOutcome[]
}

export function parseRetryJobsBody(x: unknown): RetryJobsBody {
  if (!isObject(x) || !Array.isArray(x.ids) || x.ids.length > MAX_RETRY_JOBS)
    throw errors.BAD_MESSAGE(`retry needs { ids } (at most ${MAX_RETRY_JOBS})`)
  if (!x.ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= 200))
    throw errors.BAD_MESSAGE('retry: bad id')
  if (typeof x.requestId !== 'string' || x.requestId.length === 0 || x.requestId.length > MAX_REQUEST_ID_LENGTH)
    throw errors.BAD_MESSAGE('retry needs a requestId')
  const body: RetryJobsBody = { ids: [...new Set(x.ids as string[])], requestId: x.requestId }
  if (x.maxAttempts !== undefined) {
    if (
      !Number.isSafeInteger(x.maxAttempts) ||
      (x.maxAttempts as number) < 1 ||
      (x.maxAttempts as number) > MAX_MAX_ATTEMPTS
    )
      throw errors.BAD_MESSAGE('retry: bad maxAttempts')
    body.maxAttempts = x.maxAttempts as number
  }
  return body
}

function retryOutcome(x: unknown): RetryOutcome | undefined {
  if (!isObject(x) || typeof x.id !== 'string') return undefined
  if (x.outcome === 'retried' && jobShapeProblem(x.job) === null) return x as unknown as RetryOutcome
  if (x.outcome === 'conflict' && JOB_STATES.includes(x.state as JobState)) return x as unknown as RetryOutcome
  if (x.outcome === 'not-found' || x.outcome === 'busy') return { id: x.id, outcome: x.outcome }
  return undefined
}

export function parseRetryJobsReply(x: unknown): RetryJobsReply {
  if (!isObject(x) || !Array.isArray(x.results)) throw errors.BAD_MESSAGE('retry reply needs { results }')
  const results = x.results.map(retryOutcome)
  if (results.some((r) => r === undefined)) throw errors.BAD_MESSAGE('retry reply: bad result')
  return { results: results as RetryOutcome[] }
}
