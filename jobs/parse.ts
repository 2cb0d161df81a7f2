/**
 * Small checks for values that arrive from outside the process (NATS messages, store records):
 * the one place where "is this a plain object / a count / an ISO time / a job error" is decided,
 * so the protocol parsers and the store's decoder agree on what a valid value is.
 */
import type { JobError } from './model.js'

/** A plain JSON object (not null, not an array). */
export function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

/** A safe integer ≥ 0. */
export function isSafeCount(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0
}

/** Absent, or a string. */
export function optionalString(x: unknown): boolean {
  return x === undefined || typeof x === 'string'
}

/** Longest ISO-8601 time string accepted (room for extended years and offsets). */
const MAX_TIME_LENGTH = 40

/** An ISO-8601 date-time string that parses to a real time. */
export function isIsoTime(x: unknown): x is string {
  return (
    typeof x === 'string' &&
    x.length >= 10 &&
    x.length <= MAX_TIME_LENGTH &&
    /^\d{4}-\d\d-\d\dT/.test(x) &&
    Number.isFinite(Date.parse(x))
  )
}

/** Absent, or an ISO-8601 date-time string. */
export function optionalIsoTime(x: unknown): boolean {
  return x === undefined || isIsoTime(x)
}

/** A job error `{ message, code?, name? }` with only those string fields, or undefined when it is not one. */
export function jobErrorFrom(x: unknown): JobError | undefined {
  if (!isObject(x) || typeof x.message !== 'string' || !optionalString(x.code) || !optionalString(x.name))
    return undefined
  if (x.retryInMs !== undefined && !isSafeCount(x.retryInMs)) return undefined
  const error: JobError = { message: x.message }
  if (x.code !== undefined) error.code = x.code as string
  if (x.name !== undefined) error.name = x.name as string
  if (x.retryInMs !== undefined) error.retryInMs = x.retryInMs
  return error
}

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/** `text` cut to at most `maxBytes` of UTF-8, at a character boundary, marked with an ellipsis. */
export function cutToBytes(text: string, maxBytes: number): string {
  const bytes = utf8.encode(text)
  if (bytes.length <= maxBytes) return text
  let end = Math.max(0, maxBytes - 3) // room for '…'
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end-- // never split a multi-byte character
  return fromUtf8.decode(bytes.subarray(0, end)) + '…'
}
