/**
 * A job's attempt history: one entry per attempt that ended (its run, number, worker, the boss epoch
 * that dispatched it, start and end, how it ended, its error). A final record carries the whole
 * history of the job; entries of attempts that did not end the job (a retry, a lost worker) are kept
 * in the ATTEMPTS stream meanwhile (jobs/streams/layout.ts), so a new boss can still write them
 * into the final record. Everything read back is validated; garbage decodes to undefined.
 */
import type { JobError } from './model.js'
import { cutToBytes, isIsoTime, isObject, isSafeCount, jobErrorFrom, optionalIsoTime } from './parse.js'

export const ATTEMPT_OUTCOMES = ['succeeded', 'failed', 'cancelled', 'lost', 'deferred'] as const
export type AttemptOutcomeName = (typeof ATTEMPT_OUTCOMES)[number]

export interface AttemptEntry {
  /** The job's run (0 before any retry of the ended job: POST /jobs/:id/retry). */
  run: number
  /** 1-based attempt number within the run. */
  attempt: number
  worker?: string
  /** Epoch of the boss that dispatched the attempt. */
  epoch: number
  startedAt?: string
  finishedAt: string
  durationMs?: number
  /**
   * `lost`: its worker vanished or handed the job back; `deferred`: the function threw RetryLaterError
   * (neither counts as an attempt of the function).
   */
  outcome: AttemptOutcomeName
  error?: JobError
}

/** Most entries a job keeps (the oldest go first). */
export const MAX_HISTORY_ENTRIES = 100
/** Longest error message an entry keeps. */
const ENTRY_MESSAGE_BYTES = 1000

export function attemptEntry(e: {
  run: number | undefined
  attempt: number
  worker: string | undefined
  epoch: number
  startedAt: string | undefined
  finishedAt: string
  outcome: AttemptOutcomeName
  error: JobError | undefined
}): AttemptEntry {
  const entry: AttemptEntry = {
    run: e.run ?? 0,
    attempt: e.attempt,
    epoch: e.epoch,
    finishedAt: e.finishedAt,
    outcome: e.outcome,
  }
  if (e.worker !== undefined) entry.worker = e.worker
  if (e.startedAt !== undefined) {
    entry.startedAt = e.startedAt
    const ms = Date.parse(e.finishedAt) - Date.parse(e.startedAt)
    if (Number.isFinite(ms) && ms >= 0) entry.durationMs = ms
  }
  if (e.error !== undefined) {
    const error: JobError = { message: cutToBytes(e.error.message, ENTRY_MESSAGE_BYTES) }
    if (e.error.code !== undefined) error.code = cutToBytes(e.error.code, 200)
    entry.error = error
  }
  return entry
}

/** `history` with `entry` added, at most MAX_HISTORY_ENTRIES long. */
export function withEntry(history: readonly AttemptEntry[] | undefined, entry: AttemptEntry): AttemptEntry[] {
  const out = [...(history ?? []), entry]
  return out.length > MAX_HISTORY_ENTRIES ? out.slice(out.length - MAX_HISTORY_ENTRIES) : out
}

/** An entry read back (from a record or the ATTEMPTS stream), or undefined when it is not one. */
export function attemptEntryFrom(x: unknown): AttemptEntry | undefined {
  if (!isObject(x) || !isSafeCount(x.run) || !isSafeCount(x.attempt) || !isSafeCount(x.epoch)) return undefined
  if (!ATTEMPT_OUTCOMES.includes(x.outcome as AttemptOutcomeName) || !isIsoTime(x.finishedAt)) return undefined
  if (x.worker !== undefined && typeof x.worker !== 'string') return undefined
  if (!optionalIsoTime(x.startedAt) || (x.durationMs !== undefined && !isSafeCount(x.durationMs))) return undefined
  if (x.error !== undefined && jobErrorFrom(x.error) === undefined) return undefined
  return x as unknown as AttemptEntry
}

/** A stored history: an array of entries (undefined when anything in it is not one). */
export function historyFrom(x: unknown): AttemptEntry[] | undefined {
  if (!Array.isArray(x) || x.length > MAX_HISTORY_ENTRIES + 1) return undefined
  return x.every((e) => attemptEntryFrom(e) !== undefined) ? (x as AttemptEntry[]) : undefined
}

/** Merge stored entries with those in memory (same run and attempt: one entry), oldest first. */
export function mergeHistory(a: readonly AttemptEntry[], b: readonly AttemptEntry[]): AttemptEntry[] {
  const seen = new Map<string, AttemptEntry>()
  for (const e of [...a, ...b]) seen.set(`${e.run}.${e.attempt}.${e.outcome}.${e.finishedAt}`, e)
  const out = [...seen.values()].sort((x, y) => x.finishedAt.localeCompare(y.finishedAt) || x.run - y.run)
  return out.length > MAX_HISTORY_ENTRIES ? out.slice(out.length - MAX_HISTORY_ENTRIES) : out
}
