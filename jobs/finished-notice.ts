/**
 * The finished notices on `bosun.<cluster>.events.finished` (the boss sends them after the durable
 * write: worker/boss/finished-notices.ts; the API's waiters read them: api/events.ts), parsed as
 * untrusted input like every message of jobs/protocol.ts.
 */
import { errors } from '../runner/errors.js'
import { isFinal, type Job, type JobState } from './model.js'
import { isObject } from './parse.js'
import { isValidJobId, jobShapeProblem } from './store-codec.js'

/**
 * One finished job in a finished notice: a wake-up for whoever waits on it. For a job submitted by a
 * request that waits for it (`waited` in its submission), the notice also carries its final record as
 * stored, so that request answers without reading the store again (worker/boss/finished-notices.ts).
 */
export interface FinishedNotice {
  id: string
  state: string
  job?: Job
  /**
   * Only in announcements of final records being written (`events.finishing`): the subject on which
   * JetStream acknowledges the write. The record is durable once an acknowledgement without error
   * arrives there.
   */
  ack?: string
}

/** Longest `ack` subject taken from a notice. */
const MAX_ACK_SUBJECT = 512

export interface FinishedBody {
  jobs: FinishedNotice[]
}

/**
 * The notices of a finished-jobs message; entries that are not `{ id, state }` are dropped and
 * counted. A record that is not a final job record of that id is dropped from its entry (counted in
 * `badRecords`): the entry stays a wake-up.
 */
export function parseFinishedBody(x: unknown): { jobs: FinishedNotice[]; dropped: number; badRecords: number } {
  if (!isObject(x) || !Array.isArray(x.jobs)) throw errors.BAD_MESSAGE('finished: jobs must be an array')
  const jobs: FinishedNotice[] = []
  let badRecords = 0
  for (const j of x.jobs as unknown[]) {
    if (!isObject(j) || !isValidJobId(j.id) || typeof j.state !== 'string') continue
    const notice: FinishedNotice = { id: j.id, state: j.state }
    if (typeof j.ack === 'string' && j.ack.length > 0 && j.ack.length <= MAX_ACK_SUBJECT) notice.ack = j.ack
    if (j.job !== undefined) {
      const rec = j.job
      if (
        jobShapeProblem(rec) === null &&
        isObject(rec) &&
        rec.id === j.id &&
        rec.state === j.state &&
        isFinal(j.state as JobState)
      )
        notice.job = rec as unknown as Job
      else badRecords++
    }
    jobs.push(notice)
  }
  return { jobs, dropped: x.jobs.length - jobs.length, badRecords }
}
