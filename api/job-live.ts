/**
 * What the API answers from a job's live record (the LIVE stream, jobs/live.ts): `progress` of an
 * unfinished job (GET /jobs/:id) and the kept log lines (GET /jobs/:id/logs). A live record that is
 * garbage was already dropped, with a warning, by the store's reader: it answers as if none were stored.
 */
import type { Job } from '../jobs/model.js'
import type { StoredLive } from '../jobs/streams/index.js'
import type { JobLogs } from './service.js'
import type { StoreDeadline } from './store-deadline.js'

/**
 * An unfinished job with its current attempt's `progress`, read from the LIVE stream (a record of
 * another run or attempt is not this attempt's progress; a store that does not answer in time: none).
 * A final job's progress is in its final record and is never read from here.
 */
export async function withLiveProgress(
  job: Job,
  read: (id: string) => Promise<StoredLive | null>,
  store: StoreDeadline,
): Promise<Job> {
  const { progress: _stale, ...rest } = job
  const live = (await store.callOr(read(job.id), 'read of the live record', null))?.record
  if (live?.progress === undefined || live.run !== (job.run ?? 0) || live.attempt !== job.attempts) return rest
  return { ...rest, progress: live.progress }
}

/** The answer of GET /jobs/:id/logs for a known job (no record: it never logged). */
export function logsOf(jobId: string, live: StoredLive | null): JobLogs {
  return { jobId, lines: live?.record?.lines ?? [], truncated: live?.record?.truncated ?? false }
}
