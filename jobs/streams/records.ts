/**
 * The records of the job store (layout.ts) and how a job is assembled from them: a submit record
 * (what clients sent, one per batch), a batch state record (what the boss changed since), a final
 * record (the finished job, as the API answers it). Everything read back is validated — anything
 * can be written to a stream — and garbage decodes to null, never to a half-valid object.
 */
import {
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_PRIORITY,
  DEFAULT_TIMEOUT_MS,
  isFinal,
  JOB_STATES,
  type Job,
  type JobError,
  type JobSpec,
  type JobState,
} from '../model.js'
import {
  cutToBytes,
  isIsoTime,
  isObject,
  isSafeCount,
  jobErrorFrom,
  optionalIsoTime,
  optionalString,
} from '../parse.js'
import { jobIdOf, MAX_BATCH_JOBS, parseJobId } from './layout.js'

/** One job as submitted (its id is `<batch>-<index>`). */
export interface SubmittedJob {
  function: string
  payload: unknown
  priority: number
  timeoutMs: number
  maxAttempts: number
  /** Not before this time (delayMs). */
  runAt?: string
  idempotencyKey?: string
  // A job retried after it ended (POST /jobs/:id/retry) is submitted again in a batch of its own
  // with these (jobs/streams/reopened.ts): its own id, its run, its first creation time.
  /** Its id (absent: `<batch>-<index>`). */
  id?: string
  run?: number
  createdAt?: string
  /** History entries of its earlier runs kept in the ATTEMPTS stream. */
  logged?: number
  /** The retry request that started this run. */
  reopenedBy?: string
  callbackUrl?: string
  concurrencyKey?: string
  /**
   * Its submitter waits for it (`POST /jobs?wait`): the boss's finished notice carries its final
   * record (worker/boss/finished-notices.ts). Anything but `true` is ignored.
   */
  waited?: boolean
}

/** A client's job spec as submitted: the defaults applied, a delay turned into `runAt`. */
export function jobToSubmit(spec: JobSpec, now: Date): SubmittedJob {
  const sub: SubmittedJob = {
    function: spec.function,
    payload: spec.payload ?? null,
    priority: spec.priority ?? DEFAULT_PRIORITY,
    timeoutMs: spec.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxAttempts: spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
  }
  if (spec.delayMs !== undefined && spec.delayMs > 0) sub.runAt = new Date(now.getTime() + spec.delayMs).toISOString()
  if (spec.idempotencyKey !== undefined) sub.idempotencyKey = spec.idempotencyKey
  if (spec.callbackUrl !== undefined) sub.callbackUrl = spec.callbackUrl
  if (spec.concurrencyKey !== undefined) sub.concurrencyKey = spec.concurrencyKey
  return sub
}

export interface SubmitRecord {
  v: 1
  batch: string
  createdAt: string
  /** By index; null is a hole (an id never handed out, e.g. a job answered by its idempotency key). */
  jobs: Array<SubmittedJob | null>
}

/** What the boss changed about one job of an open batch. */
export interface LiveJob {
  state: JobState
  attempts: number
  worker?: string
  startedAt?: string
  runAt?: string
  finishedAt?: string
  error?: JobError
  cancelRequested?: boolean
  /** History entries of its attempts kept in the ATTEMPTS stream (absent: none). */
  logged?: number
}

/** The boss's record of an open batch. */
export interface BatchState {
  v: 1
  /** Epoch of the boss that wrote it (the fence: a smaller one never overwrites it). */
  epoch: number
  batch: string
  size: number
  /** Jobs whose final record is durable, as a bitmask (base64). */
  done: string
  /** Jobs whose state differs from their submission, by index. */
  jobs: Record<string, LiveJob>
  /**
   * A closed batch's tombstone (every job done, none listed): it keeps the subject's last sequence
   * non-zero after the close, so an older epoch's held first write (expecting no record) is refused.
   */
  closed?: true
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * JSON as UTF-8 bytes. Buffer.from, not TextEncoder: ≈ 0.7 against ≈ 1 µs per final record
 * (`node dist/bench/run.js micro`).
 */
export function encode(value: unknown): Uint8Array {
  return Buffer.from(JSON.stringify(value), 'utf8')
}

export function parseJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(data))
  } catch {
    return undefined
  }
}

function submittedJob(x: unknown): SubmittedJob | undefined {
  if (!isObject(x) || typeof x.function !== 'string' || !('payload' in x)) return undefined
  if (!Number.isSafeInteger(x.priority) || !isSafeCount(x.timeoutMs) || !isSafeCount(x.maxAttempts)) return undefined
  if (!optionalIsoTime(x.runAt) || !optionalString(x.idempotencyKey)) return undefined
  if (x.id !== undefined && parseJobId(x.id) === undefined) return undefined
  if ((x.run !== undefined && !isSafeCount(x.run)) || (x.logged !== undefined && !isSafeCount(x.logged)))
    return undefined
  if (!optionalIsoTime(x.createdAt) || !optionalString(x.reopenedBy)) return undefined
  if (!optionalString(x.callbackUrl) || !optionalString(x.concurrencyKey)) return undefined
  return x as unknown as SubmittedJob
}

export function decodeSubmit(data: Uint8Array, batch: string): SubmitRecord | null {
  const x = parseJson(data)
  if (!isObject(x) || x.v !== 1 || x.batch !== batch || !isIsoTime(x.createdAt) || !Array.isArray(x.jobs)) return null
  if (
    x.jobs.length === 0 ||
    x.jobs.length > MAX_BATCH_JOBS ||
    !x.jobs.every((j) => j === null || submittedJob(j) !== undefined)
  )
    return null
  return x as unknown as SubmitRecord
}

function liveJob(x: unknown): LiveJob | undefined {
  if (!isObject(x) || !JOB_STATES.includes(x.state as JobState) || !isSafeCount(x.attempts)) return undefined
  if (
    !optionalString(x.worker) ||
    !optionalIsoTime(x.startedAt) ||
    !optionalIsoTime(x.runAt) ||
    !optionalIsoTime(x.finishedAt)
  )
    return undefined
  if (x.error !== undefined && jobErrorFrom(x.error) === undefined) return undefined
  if (x.cancelRequested !== undefined && typeof x.cancelRequested !== 'boolean') return undefined
  if (x.logged !== undefined && !isSafeCount(x.logged)) return undefined
  return x as unknown as LiveJob
}

export function decodeState(data: Uint8Array, batch: string): BatchState | null {
  const x = parseJson(data)
  if (!isObject(x) || x.v !== 1 || x.batch !== batch || !isSafeCount(x.epoch) || !isSafeCount(x.size)) return null
  if (x.size < 1 || x.size > MAX_BATCH_JOBS || typeof x.done !== 'string' || !isObject(x.jobs)) return null
  if (x.closed !== undefined && x.closed !== true) return null
  for (const [k, v] of Object.entries(x.jobs)) {
    const i = Number(k)
    if (!Number.isInteger(i) || i < 0 || i >= x.size || liveJob(v) === undefined) return null
  }
  return x as unknown as BatchState
}

/** A new, empty state record of a batch of `size` jobs. */
export function emptyState(batch: string, size: number, epoch: number): BatchState {
  return { v: 1, epoch, batch, size, done: Buffer.alloc(Math.ceil(size / 8)).toString('base64'), jobs: {} }
}

/** The tombstone a boss of `epoch` leaves on a closed batch's state subject (see BatchState.closed). */
export function tombstoneState(batch: string, size: number, epoch: number): BatchState {
  const all = Array.from({ length: size }, (_, i) => i)
  return { v: 1, epoch, batch, size, done: doneMask(all, size), jobs: {}, closed: true }
}

/** The done-bitmask of a state record as a set of indexes. */
export function doneSet(s: BatchState): Set<number> {
  const bytes = Buffer.from(s.done, 'base64')
  const out = new Set<number>()
  for (let i = 0; i < s.size; i++) if ((bytes[i >> 3] ?? 0) & (1 << (i & 7))) out.add(i)
  return out
}

/** A bitmask (base64) of `indexes` for a batch of `size`. */
export function doneMask(indexes: Iterable<number>, size: number): string {
  const bytes = Buffer.alloc(Math.ceil(size / 8))
  for (const i of indexes) if (i >= 0 && i < size) bytes[i >> 3]! |= 1 << (i & 7)
  return bytes.toString('base64')
}

/** The run of job `index` of a submitted batch (0: never retried). */
export function runOf(sub: SubmitRecord, index: number): number {
  return sub.jobs[index]?.run ?? 0
}

/** Job `index` of a batch as the API shows it: its submission, with what the boss changed. */
export function assemble(sub: SubmitRecord, index: number, live: LiveJob | undefined, epoch: number): Job {
  const s = sub.jobs[index]
  if (!s) throw new Error(`batch ${sub.batch} has no job ${index}`)
  const job: Job = {
    id: s.id ?? jobIdOf(sub.batch, index),
    function: s.function,
    state: 'queued',
    attempts: 0,
    maxAttempts: s.maxAttempts,
    payload: s.payload,
    priority: s.priority,
    timeoutMs: s.timeoutMs,
    createdAt: s.createdAt ?? sub.createdAt,
    epoch,
  }
  if (s.idempotencyKey !== undefined) job.idempotencyKey = s.idempotencyKey
  if (s.run !== undefined) job.run = s.run
  if (s.logged) job.logged = s.logged
  if (s.reopenedBy !== undefined) job.reopenedBy = s.reopenedBy
  if (s.runAt !== undefined) job.runAt = s.runAt
  if (s.callbackUrl !== undefined) job.callbackUrl = s.callbackUrl
  if (s.concurrencyKey !== undefined) job.concurrencyKey = s.concurrencyKey
  if (live === undefined) return job
  const out: Job = { ...job, state: live.state, attempts: live.attempts }
  if (live.state !== 'queued' || live.runAt === undefined) delete out.runAt
  if (live.runAt !== undefined && live.state === 'queued') out.runAt = live.runAt
  if (live.worker !== undefined) out.worker = live.worker
  if (live.startedAt !== undefined) out.startedAt = live.startedAt
  if (live.finishedAt !== undefined && isFinal(live.state)) out.finishedAt = live.finishedAt
  if (live.error !== undefined) out.error = live.error
  if (live.cancelRequested) out.cancelRequested = true
  if (live.logged !== undefined) out.logged = live.logged
  return out
}

/** Longest error message kept in a batch's state record (the full one goes to the final record). */
const LIVE_ERROR_BYTES = 300

/** What the boss keeps about a job in its batch's state record (nothing for a plain queued job). */
export function liveOf(job: Job): LiveJob | undefined {
  if (
    job.state === 'queued' &&
    job.attempts === 0 &&
    !job.cancelRequested &&
    job.error === undefined &&
    job.worker === undefined &&
    !job.logged
  )
    return undefined
  const live: LiveJob = { state: job.state, attempts: job.attempts }
  if (job.worker !== undefined) live.worker = job.worker
  if (job.startedAt !== undefined) live.startedAt = job.startedAt
  if (job.runAt !== undefined && job.state === 'queued') live.runAt = job.runAt
  if (job.finishedAt !== undefined && isFinal(job.state)) live.finishedAt = job.finishedAt
  if (job.error !== undefined) live.error = { ...job.error, message: cutToBytes(job.error.message, LIVE_ERROR_BYTES) }
  if (job.cancelRequested) live.cancelRequested = true
  if (job.logged) live.logged = job.logged
  return live
}

/** One index message: ids of jobs that finished in one state, in finish order. */
export interface IndexRecord {
  v: 1
  ids: string[]
}

export function decodeIndex(data: Uint8Array): IndexRecord | null {
  const x = parseJson(data)
  if (!isObject(x) || x.v !== 1 || !Array.isArray(x.ids) || !x.ids.every((id) => typeof id === 'string')) return null
  return x as unknown as IndexRecord
}

/**
 * How far DONE is settled: every final record at or below `doneSeq` is in its batch's done mask
 * (or its batch is closed). Written by the boss of `epoch`; a new boss reads DONE after it.
 */
export interface DoneCheckpoint {
  v: 1
  epoch: number
  doneSeq: number
}

export function decodeCheckpoint(data: Uint8Array): DoneCheckpoint | null {
  const x = parseJson(data)
  if (!isObject(x) || x.v !== 1 || !isSafeCount(x.epoch) || !isSafeCount(x.doneSeq)) return null
  return x as unknown as DoneCheckpoint
}
