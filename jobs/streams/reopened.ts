/**
 * A job retried after it ended (POST /jobs/:id/retry) is "reopened": its final record in DONE is
 * replaced by a reopened record (on the job's own subject; readers take its last record) — the job
 * as it stands now, queued for its next run, and where that run was submitted (a batch of its own
 * in SUBMIT, see layout.ts).
 * The boss writes the reopened records first (compare-and-set on the final record they replace),
 * then the batch; a boss that dies in between leaves the records above DONE's checkpoint, and the
 * next boss submits the batch from them. Readers follow a reopened record to the batch; the run's
 * final record later replaces it (boss-store.ts writeFinal).
 */
import { jobShapeProblem } from '../store-codec.js'
import type { Job } from '../model.js'
import { isObject, isSafeCount } from '../parse.js'
import { isBatchId, MAX_BATCH_JOBS } from './layout.js'
import { parseJson, type SubmitRecord, type SubmittedJob } from './records.js'

/** Where a reopened job's run was submitted, and the request that reopened it. */
export interface ReopenedAt {
  batch: string
  index: number
  /** The retry request's id (a repeated request is answered, not applied again). */
  requestId: string
}

/** DONE's record of a reopened job: the job (queued, its new run) and where that run was submitted. */
export type ReopenedRecord = Job & { reopened: ReopenedAt }

export function isReopened(x: Job): x is ReopenedRecord {
  return 'reopened' in x
}

function reopenedAt(x: unknown): ReopenedAt | undefined {
  if (!isObject(x) || !isBatchId(x.batch) || !isSafeCount(x.index) || x.index >= MAX_BATCH_JOBS) return undefined
  if (typeof x.requestId !== 'string' || x.requestId.length === 0 || x.requestId.length > 300) return undefined
  return { batch: x.batch, index: x.index, requestId: x.requestId }
}

/** What DONE holds for a job: its final record, a reopened record, or garbage (with why). */
export type DoneRecord =
  { kind: 'final'; job: Job } | { kind: 'reopened'; job: ReopenedRecord } | { kind: 'garbage'; problem: string }

export function decodeDone(data: Uint8Array, expectedId: string): DoneRecord {
  const v = parseJson(data)
  if (v === undefined) return { kind: 'garbage', problem: 'not JSON' }
  const problem = jobShapeProblem(v)
  if (problem !== null) return { kind: 'garbage', problem }
  const job = v as Job & { reopened?: unknown }
  if (job.id !== expectedId) return { kind: 'garbage', problem: `id ${job.id} stored under key of ${expectedId}` }
  if (job.reopened === undefined) return { kind: 'final', job }
  const at = reopenedAt(job.reopened)
  if (!at || job.state !== 'queued') return { kind: 'garbage', problem: 'bad reopened record' }
  return { kind: 'reopened', job: { ...job, reopened: at } }
}

/** The entry of a listing index: a job id, with its run when retried (`<id>@<run>`). */
export function indexEntry(id: string, run: number | undefined): string {
  return run ? `${id}@${run}` : id
}

export function parseIndexEntry(entry: string): { id: string; run: number } {
  const at = entry.indexOf('@')
  if (at < 0) return { id: entry, run: 0 }
  const run = Number(entry.slice(at + 1))
  return { id: entry.slice(0, at), run: Number.isSafeInteger(run) && run > 0 ? run : -1 }
}

/** DONE's reopened record of `final` (a failed or cancelled job): queued for its next run, submitted at `at`. */
export function reopenedRecordOf(final: Job, at: ReopenedAt, epoch: number, maxAttempts?: number): ReopenedRecord {
  const job: Job = {
    id: final.id,
    function: final.function,
    state: 'queued',
    attempts: 0,
    maxAttempts: maxAttempts ?? final.maxAttempts,
    payload: final.payload,
    priority: final.priority,
    timeoutMs: final.timeoutMs,
    createdAt: final.createdAt,
    epoch,
    run: (final.run ?? 0) + 1,
    reopenedBy: at.requestId,
  }
  if (final.idempotencyKey !== undefined) job.idempotencyKey = final.idempotencyKey
  if (final.callbackUrl !== undefined) job.callbackUrl = final.callbackUrl
  if (final.concurrencyKey !== undefined) job.concurrencyKey = final.concurrencyKey
  if (final.history?.length) {
    job.history = final.history
    job.logged = final.history.length
  }
  return { ...job, reopened: at }
}

/** The submission of a reopened run (its entry in the batch the record points to). */
export function submissionOf(rec: ReopenedRecord): SubmittedJob {
  const sub: SubmittedJob = {
    function: rec.function,
    payload: rec.payload,
    priority: rec.priority,
    timeoutMs: rec.timeoutMs,
    maxAttempts: rec.maxAttempts,
    id: rec.id,
    run: rec.run ?? 1,
    createdAt: rec.createdAt,
  }
  if (rec.idempotencyKey !== undefined) sub.idempotencyKey = rec.idempotencyKey
  if (rec.callbackUrl !== undefined) sub.callbackUrl = rec.callbackUrl
  if (rec.concurrencyKey !== undefined) sub.concurrencyKey = rec.concurrencyKey
  if (rec.logged) sub.logged = rec.logged
  if (rec.reopenedBy !== undefined) sub.reopenedBy = rec.reopenedBy
  return sub
}

/** The batch of reopened runs `records` point to (all at the same batch), holes where none is. */
export function reopenedBatch(batch: string, records: readonly ReopenedRecord[], createdAt: string): SubmitRecord {
  const size = Math.max(...records.map((r) => r.reopened.index)) + 1
  const jobs: Array<SubmittedJob | null> = new Array<SubmittedJob | null>(size).fill(null)
  for (const r of records) if (r.reopened.batch === batch) jobs[r.reopened.index] = submissionOf(r)
  return { v: 1, batch, createdAt, jobs }
}
