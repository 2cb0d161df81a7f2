/** Ids and jobs for the boss's bench (test/helpers/boss-fakes.ts): ULID-shaped, increasing. */
import type { Job } from '../../jobs/model.js'
import { jobIdOf } from '../../jobs/streams/index.js'

let seq = 0
/** A batch id (ULID-shaped, increasing). */
function batchId(): string {
  return `01J${String(++seq).padStart(23, '0')}`
}

/** A job id: job 0 of a new batch. */
export function jobId(): string {
  return jobIdOf(batchId(), 0)
}

/** A job as the API stores it. */
export function newJob(over: Partial<Job> = {}): Job {
  return {
    id: jobId(),
    function: 'echo',
    state: 'queued',
    attempts: 0,
    maxAttempts: 1,
    payload: null,
    priority: 0,
    timeoutMs: 60_000,
    createdAt: new Date().toISOString(),
    epoch: 0,
    ...over,
  }
}
