/**
 * A job's live record (README "Job functions": ctx.progress and kept ctx.log lines): what a worker
 * stores in the LIVE stream, one message per job (`bosun.<c>.live.<jobId>`), and the checks every
 * reader applies to it. Shared by the worker that writes it, the boss (a result's progress) and the
 * API that answers `progress` and `GET /jobs/:id/logs`: one definition of a valid progress value
 * and a valid line, so whatever a reader accepts a writer could have written.
 */
import { isObject, isSafeCount } from './parse.js'

/** Largest progress object, as UTF-8 JSON bytes. */
export const MAX_PROGRESS_BYTES = 1024
/** Largest `fields` of a kept log line, as UTF-8 JSON bytes (larger ones are replaced by a preview). */
export const MAX_LINE_FIELDS_BYTES = 1024
/** Longest `msg` of a kept log line, in characters. */
export const MAX_LINE_MSG_CHARS = 4096
export const DEFAULT_JOB_LOG_MAX_LINES = 1000
export const DEFAULT_JOB_LOG_MAX_BYTES = 65_536

export type LiveLevel = 'debug' | 'info' | 'warn' | 'error'
const LEVELS: readonly string[] = ['debug', 'info', 'warn', 'error']

/** One kept ctx.log line. */
export interface LiveLine {
  /** ISO-8601 time the function logged it. */
  time: string
  level: LiveLevel
  msg: string
  /** The attempt that logged it (1-based). */
  attempt: number
  /** The job's run (absent: 0). */
  run?: number
  fields?: Record<string, unknown>
}

/** The message of one job in the LIVE stream. */
export interface LiveRecord {
  v: 1
  jobId: string
  /** The run and attempt that wrote it last. */
  run: number
  attempt: number
  /** That attempt's last ctx.progress value (absent: it reported none). */
  progress?: unknown
  /** The tail of the job's lines across its attempts, oldest first. */
  lines: LiveLine[]
  /** Earlier lines were dropped (JOB_LOG_MAX_LINES / JOB_LOG_MAX_BYTES). */
  truncated: boolean
}

/** Why `value` is not a valid progress value, or undefined when it is one. */
export function progressProblem(value: unknown): string | undefined {
  if (typeof value === 'number') {
    return Number.isFinite(value) && value >= 0 && value <= 100
      ? undefined
      : `a progress number must be finite and within 0–100, got ${String(value)}`
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const got = value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value
    return `progress must be a number 0–100 or a plain JSON object, got ${got}`
  }
  const proto = Object.getPrototypeOf(value) as unknown
  if (proto !== Object.prototype && proto !== null) return 'progress must be a plain object (not a class instance)'
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (err) {
    return `progress is not JSON-serialisable: ${(err as Error).message}`
  }
  if (json === undefined) return 'progress is not JSON-serialisable'
  const bytes = Buffer.byteLength(json, 'utf8')
  if (bytes > MAX_PROGRESS_BYTES)
    return `progress is too large: ${bytes} bytes of JSON, the limit is ${MAX_PROGRESS_BYTES}`
  return undefined
}

/** Encoded size of a line (what JOB_LOG_MAX_BYTES counts). */
export function lineBytes(line: LiveLine): number {
  return Buffer.byteLength(JSON.stringify(line), 'utf8')
}

/** `fields` as kept: JSON-safe and at most MAX_LINE_FIELDS_BYTES, else a cut preview. */
export function keptFields(fields: unknown): Record<string, unknown> | undefined {
  if (!isObject(fields)) return undefined
  let json: string | undefined
  try {
    json = JSON.stringify(fields)
  } catch {
    return { fieldsDropped: 'not serialisable' }
  }
  if (json === undefined || json === '{}') return undefined
  if (Buffer.byteLength(json, 'utf8') <= MAX_LINE_FIELDS_BYTES) return JSON.parse(json) as Record<string, unknown>
  return { fieldsTrimmed: `${json.slice(0, MAX_LINE_FIELDS_BYTES / 2)}…` }
}

/** A kept line from a ctx.log call. */
export function makeLine(
  level: string,
  msg: string,
  attempt: number,
  run: number,
  fields: unknown,
  now = new Date(),
): LiveLine {
  const line: LiveLine = {
    time: now.toISOString(),
    level: LEVELS.includes(level) ? (level as LiveLevel) : 'info',
    msg: msg.length > MAX_LINE_MSG_CHARS ? `${msg.slice(0, MAX_LINE_MSG_CHARS)}…` : msg,
    attempt,
  }
  if (run > 0) line.run = run
  const f = keptFields(fields)
  if (f !== undefined) line.fields = f
  return line
}

/** (run, attempt) order: negative when a is older than b. */
export function compareAttempts(a: { run?: number; attempt: number }, b: { run?: number; attempt: number }): number {
  return (a.run ?? 0) - (b.run ?? 0) || a.attempt - b.attempt
}

function parseLine(x: unknown): LiveLine | undefined {
  if (!isObject(x) || typeof x.time !== 'string' || typeof x.msg !== 'string') return undefined
  if (typeof x.level !== 'string' || !LEVELS.includes(x.level) || !isSafeCount(x.attempt) || x.attempt < 1)
    return undefined
  if (x.run !== undefined && !isSafeCount(x.run)) return undefined
  if (x.fields !== undefined && !isObject(x.fields)) return undefined
  const line: LiveLine = { time: x.time, level: x.level as LiveLevel, msg: x.msg, attempt: x.attempt }
  if (typeof x.run === 'number' && x.run > 0) line.run = x.run
  if (x.fields !== undefined) line.fields = x.fields
  return line
}

/** A stored live record, strictly checked (undefined: garbage, or another job's). */
export function parseLiveRecord(x: unknown, jobId: string): LiveRecord | undefined {
  if (!isObject(x) || x.v !== 1 || x.jobId !== jobId || !isSafeCount(x.run) || !isSafeCount(x.attempt)) return undefined
  if (x.attempt < 1 || !Array.isArray(x.lines) || typeof x.truncated !== 'boolean') return undefined
  if (x.progress !== undefined && progressProblem(x.progress) !== undefined) return undefined
  const lines: LiveLine[] = []
  for (const l of x.lines) {
    const line = parseLine(l)
    if (line === undefined) return undefined
    lines.push(line)
  }
  const rec: LiveRecord = { v: 1, jobId, run: x.run, attempt: x.attempt, lines, truncated: x.truncated }
  if (x.progress !== undefined) rec.progress = x.progress
  return rec
}
