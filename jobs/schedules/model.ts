/**
 * A schedule as stored (jobs/schedules/store.ts) and the mark of its last fired due time, with the
 * strict parsers the store reads them back through: a record that is not one is dropped with a
 * warning by the caller, never acted on (the boss fires jobs from these).
 */
import { isIsoTime, isObject, isSafeCount } from '../parse.js'
import { FUNCTION_NAME_PATTERN } from '../model.js'
import type { CatchUp, Overlap } from './plan.js'

/** A schedule id: a KV key token (letters, digits, `_`, `-`), 1–64 characters. */
export const SCHEDULE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/
/** Most recent fired due times a mark keeps (GET /schedules/:id shows them). */
export const RECENT_FIRES = 20

export interface ScheduleJobOptions {
  priority?: number
  timeoutMs?: number
  maxAttempts?: number
}

export interface Schedule {
  id: string
  cron: string
  /** IANA time zone the cron expression is read in. */
  timezone: string
  function: string
  payload?: unknown
  jobOptions: ScheduleJobOptions
  overlap: Overlap
  catchUp: CatchUp
  catchUpWindowMs: number
  paused: boolean
  createdAt: string
  updatedAt: string
  /** Due times at or before this are not owed: the creation, the last resume or change of `cron`. */
  since: string
}

/** A due time fired, and the job it made. */
export interface Fired {
  due: string
  jobId: string
}

/** The schedule's firing state, written by the boss after each fire. */
export interface FiredMark {
  /** The newest due time fired. */
  lastDue: string
  /** The epoch of the boss that wrote it. */
  epoch: number
  /** Newest first, at most RECENT_FIRES. */
  recent: Fired[]
  /** A due time held back until the previous job finishes (`overlap: 'queue-one'`). */
  deferred?: string
}

const OVERLAPS: readonly string[] = ['allow', 'skip', 'queue-one']
const CATCH_UPS: readonly string[] = ['none', 'latest', 'all']

function jobOptionsOf(x: unknown): ScheduleJobOptions | undefined {
  if (!isObject(x)) return undefined
  const out: ScheduleJobOptions = {}
  for (const k of ['priority', 'timeoutMs', 'maxAttempts'] as const) {
    const v = x[k]
    if (v === undefined) continue
    if (!Number.isSafeInteger(v)) return undefined
    out[k] = v as number
  }
  return out
}

/** A stored schedule read back, or undefined for anything else. */
export function parseSchedule(x: unknown): Schedule | undefined {
  if (!isObject(x)) return undefined
  const strings = [x.cron, x.timezone, x.function].every((s) => typeof s === 'string' && s !== '')
  const jobOptions = jobOptionsOf(x.jobOptions)
  if (
    typeof x.id !== 'string' ||
    !SCHEDULE_ID_PATTERN.test(x.id) ||
    !strings ||
    !FUNCTION_NAME_PATTERN.test(x.function as string) ||
    jobOptions === undefined ||
    !OVERLAPS.includes(x.overlap as string) ||
    !CATCH_UPS.includes(x.catchUp as string) ||
    !isSafeCount(x.catchUpWindowMs) ||
    typeof x.paused !== 'boolean' ||
    ![x.createdAt, x.updatedAt, x.since].every(isIsoTime)
  )
    return undefined
  const s: Schedule = {
    id: x.id,
    cron: x.cron as string,
    timezone: x.timezone as string,
    function: x.function as string,
    jobOptions,
    overlap: x.overlap as Overlap,
    catchUp: x.catchUp as CatchUp,
    catchUpWindowMs: x.catchUpWindowMs,
    paused: x.paused,
    createdAt: x.createdAt as string,
    updatedAt: x.updatedAt as string,
    since: x.since as string,
  }
  if (x.payload !== undefined) s.payload = x.payload
  return s
}

/** A stored fired mark read back, or undefined. */
export function parseFiredMark(x: unknown): FiredMark | undefined {
  if (!isObject(x) || !isIsoTime(x.lastDue) || !isSafeCount(x.epoch) || !Array.isArray(x.recent)) return undefined
  const recent = x.recent.filter(
    (f): f is Fired => isObject(f) && isIsoTime(f.due) && typeof f.jobId === 'string' && f.jobId !== '',
  )
  const mark: FiredMark = { lastDue: x.lastDue, epoch: x.epoch, recent: recent.slice(0, RECENT_FIRES) }
  if (isIsoTime(x.deferred)) mark.deferred = x.deferred
  return mark
}
