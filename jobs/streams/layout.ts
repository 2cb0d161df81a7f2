/**
 * Where jobs live in JetStream (README "Architecture: the job store"): seven streams per cluster,
 * split by what their cost may depend on (IDEM, the idempotency claims, is laid out in open.ts).
 *
 * - SUBMIT (`bosun_<c>_submit`, no age limit): one message per submitted batch, subject
 *   `bosun.<c>.sub.<batch>`; a job's id is its batch id and its index in the batch, so a job is
 *   found from its id alone. A batch's message is deleted once every job in it is final.
 * - STATE (`bosun_<c>_state`, no age limit): per open batch, the boss's fenced record of what
 *   changed since submission (`bosun.<c>.state.<batch>`: which jobs are done, which run where,
 *   which wait for a retry or were asked to cancel). Deleted with the batch. Also the boss's
 *   checkpoint (`bosun.<c>.state.checkpoint`): how far DONE is settled (see boss-store.ts).
 * - DONE (`bosun_<c>_done`, max age = JOB_RETENTION_MS): the final record of each finished job,
 *   written once: its own `bosun.<c>.done.<id>`, or with others of its batch in a group,
 *   `bosun.<c>.done.g.<batch>.<part>` (final-groups.ts). JetStream expires them; no process sweeps.
 * - INDEX (`bosun_<c>_index`, max age = JOB_RETENTION_MS): finished job ids in finish order,
 *   `bosun.<c>.idx.<state>.<function>`, for listings by state and function.
 * - ATTEMPTS (`bosun_<c>_attempts`, max age = JOB_RETENTION_MS, 100 per job): the history entries of
 *   attempts that did not end their job (a retry, a lost worker), `bosun.<c>.att.<id>`, so a new boss
 *   can write the whole history into the final record (jobs/attempts.ts). Written only on failures.
 * - LIVE (`bosun_<c>_live`, max age = JOB_RETENTION_MS, 1 per job): a running job's last progress and
 *   the tail of its ctx.log lines across attempts (jobs/live.ts), `bosun.<c>.live.<id>`, written by the
 *   worker that runs it, throttled, and only for jobs that report (worker/agent/live-recorder.ts).
 *
 * SUBMIT and STATE hold only unfinished work (and the finished jobs of batches still open), so
 * a new boss reads them whole; DONE and INDEX hold the history, which no boss reads.
 */
import { CLUSTER_PATTERN } from '../../runner/config.js'
import { errors } from '../../runner/errors.js'
import { FUNCTION_NAME_PATTERN, JOB_STATES, type JobState } from '../model.js'

/** Most jobs in one batch (POST /jobs/batch's limit; the id keeps three digits for the index). */
export const MAX_BATCH_JOBS = 1000

/** A batch id: a ULID (26 Crockford base-32 characters), sortable by creation time. */
const BATCH_ID = /^[0-9A-HJKMNP-TV-Z]{26}$/
/** A job id: `<batch>-<index>` with a three-digit index. */
const JOB_ID = /^([0-9A-HJKMNP-TV-Z]{26})-(\d{3})$/

export interface StreamNames {
  submit: string
  state: string
  done: string
  index: string
  attempts: string
  live: string
}

/** The streams of `cluster`. */
export function streamNames(cluster: string): StreamNames {
  if (!CLUSTER_PATTERN.test(cluster)) throw errors.CONFIG(`invalid cluster name ${JSON.stringify(cluster)}`)
  return {
    submit: `bosun_${cluster}_submit`,
    state: `bosun_${cluster}_state`,
    done: `bosun_${cluster}_done`,
    index: `bosun_${cluster}_index`,
    attempts: `bosun_${cluster}_attempts`,
    live: `bosun_${cluster}_live`,
  }
}

/** Subject builders of one cluster. */
export class Subjects {
  readonly prefix: string
  constructor(readonly cluster: string) {
    streamNames(cluster) // validates the name
    this.prefix = `bosun.${cluster}`
  }
  submit(batch: string): string {
    return `${this.prefix}.sub.${batch}`
  }
  get allSubmits(): string {
    return `${this.prefix}.sub.>`
  }
  state(batch: string): string {
    return `${this.prefix}.state.${batch}`
  }
  get allStates(): string {
    return `${this.prefix}.state.>`
  }
  /** The boss's record of how far DONE is settled (in STATE; never a batch's subject). */
  get checkpoint(): string {
    return `${this.prefix}.state.checkpoint`
  }
  done(jobId: string): string {
    return `${this.prefix}.done.${jobId}`
  }
  /** The groups of final records of part `part` of `batch` (jobs/streams/final-groups.ts). */
  doneGroup(batch: string, part: number): string {
    return `${this.prefix}.done.g.${batch}.${part}`
  }
  get allDone(): string {
    return `${this.prefix}.done.>`
  }
  /** History entries of job `jobId`'s attempts that did not end it. */
  attempts(jobId: string): string {
    return `${this.prefix}.att.${jobId}`
  }
  /** Job `jobId`'s live record (progress and kept log lines). */
  live(jobId: string): string {
    return `${this.prefix}.live.${jobId}`
  }
  /** Index subject of finished jobs in `state` of `fn` (either may be `*` to filter). */
  index(state: JobState | '*', fn: string): string {
    return `${this.prefix}.idx.${state}.${fn}`
  }
  /** The batch id of a submit or state subject (undefined for anything else). */
  batchOf(subject: string): string | undefined {
    const last = subject.slice(subject.lastIndexOf('.') + 1)
    return BATCH_ID.test(last) ? last : undefined
  }
}

export function isBatchId(x: unknown): x is string {
  return typeof x === 'string' && BATCH_ID.test(x)
}

/** The id of job `index` of `batch`. */
export function jobIdOf(batch: string, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_BATCH_JOBS)
    throw errors.VALIDATION(`batch index ${index} out of range`)
  return `${batch}-${String(index).padStart(3, '0')}`
}

/** Batch and index of a job id, or undefined when it is not one of ours. */
export function parseJobId(id: unknown): { batch: string; index: number } | undefined {
  if (typeof id !== 'string') return undefined
  const m = JOB_ID.exec(id)
  return m ? { batch: m[1]!, index: Number(m[2]) } : undefined
}

/** A listing filter as index subject tokens. */
export function indexFilter(
  state: JobState | undefined,
  fn: string | undefined,
): { state: JobState | '*'; fn: string } {
  if (state !== undefined && !JOB_STATES.includes(state)) throw errors.VALIDATION(`bad state ${state}`)
  if (fn !== undefined && !FUNCTION_NAME_PATTERN.test(fn)) throw errors.VALIDATION(`bad function ${fn}`)
  return { state: state ?? '*', fn: fn ?? '*' }
}
