/**
 * The ports of the API's JobService (api/job-service.ts) onto the job store and the finished-job
 * notices: narrow interfaces, so the service's tests can put fakes behind them.
 */
import type { Job } from '../jobs/model.js'
import type { Claim, ListPage, ListQuery, StoredLive, SubmitPlan, SubmittedJob, Added } from '../jobs/streams/index.js'

/** What the API needs from the job store (jobs/streams/: the Submitter, the JobReader, a GroupCommitter). */
export interface ApiStore {
  /**
   * Add one job, created at `createdAt`, to the current group commit (its id at once; `stored` once the
   * group is durable).
   */
  commit(job: SubmittedJob, idempotencyKey: string | undefined, createdAt: string): Added
  plan(jobs: readonly SubmittedJob[], newBatchId: () => string): SubmitPlan
  publish(plan: SubmitPlan, jobs: ReadonlyArray<SubmittedJob | null>, createdAt: string): Promise<void>
  claim(key: string, jobId: string): Promise<Claim>
  repoint(key: string, abandoned: Claim, jobId: string): Promise<Claim>
  /** These ids' claims may stand but their jobs will never be sent (jobs/streams/claims.ts). */
  abandon(jobIds: readonly string[]): void
  /** This process gave up on storing job `jobId` before sending it. */
  abandoned(jobId: string): boolean
  get(id: string): Promise<Job | null>
  /** The job's live record (progress, kept log lines) from the LIVE stream, or null when it has none. */
  live(id: string): Promise<StoredLive | null>
  list(q: ListQuery): Promise<ListPage>
  retryAnswer(requestId: string): Promise<unknown>
  keepRetryAnswer(requestId: string, answer: unknown): Promise<unknown>
}

/**
 * Wait for a job's finished notice: resolves when one names the job (with its final record when the
 * notice carried one), or after `timeoutMs`; `cancel` stops waiting (and resolves). Resolves with
 * undefined when there is no record.
 */
export interface EventWaiter {
  waitOnce(jobId: string, timeoutMs: number): { promise: Promise<Job | undefined>; cancel(): void }
}
