/**
 * The wire format on NATS: JSON envelopes `{ v: 1, type, from, epoch?, body }` and, for requests,
 * reply envelopes `{ v: 1, type: 'reply', from, ok: true, body }` or `{ …, ok: false, error }`.
 * Pure functions: decoding never throws, it reports why a message is malformed.
 */
import type { Envelope } from '../contracts.js'
import { BosunError, errors } from '../errors.js'

/** The `type` of every reply envelope (a handler may not use it). */
export const REPLY_TYPE = 'reply'
/** Longest accepted message type. */
export const MAX_TYPE_LENGTH = 128

/** A handler's error as carried back to the requester. */
export interface RemoteErrorInfo {
  /** The BosunError code (BOSUN_ERR_…), or the thrown error's own string code, or BOSUN_ERR_REMOTE. */
  code: string
  message: string
  statusCode?: number
  name?: string
  details?: Record<string, unknown>
}

export type ReplyEnvelope<T = unknown> =
  | { readonly v: 1; readonly type: typeof REPLY_TYPE; readonly from: string; readonly ok: true; readonly body: T }
  | {
      readonly v: 1
      readonly type: typeof REPLY_TYPE
      readonly from: string
      readonly ok: false
      readonly error: RemoteErrorInfo
    }

export type Decoded<T> = { ok: true; value: T } | { ok: false; reason: string }

const decoder = new TextDecoder('utf-8', { fatal: true })

/** JSON-encode a value for the wire; throws BOSUN_ERR_BAD_MESSAGE when it is not serialisable. */
export function encodeJson(value: unknown): Uint8Array {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw errors.BAD_MESSAGE(`message is not JSON-serialisable: ${(err as Error).message}`, { cause: err })
  }
  if (text === undefined) throw errors.BAD_MESSAGE('message is not JSON-serialisable')
  return Buffer.from(text, 'utf8') // not TextEncoder: faster at a few hundred bytes (`node dist/bench/run.js micro`)
}

/** Build and encode an envelope (an undefined body travels as null). */
export function encodeEnvelope(type: string, from: string, body: unknown, epoch?: number): Uint8Array {
  const env: Envelope =
    epoch === undefined ? { v: 1, type, from, body: body ?? null } : { v: 1, type, from, epoch, body: body ?? null }
  return encodeJson(env)
}

function parseObject(data: Uint8Array): Decoded<Record<string, unknown>> {
  let value: unknown
  try {
    value = JSON.parse(decoder.decode(data))
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, reason: 'not a JSON object' }
  const obj = value as Record<string, unknown>
  if (obj.v !== 1) return { ok: false, reason: 'unsupported envelope version' }
  if (typeof obj.from !== 'string') return { ok: false, reason: 'missing from' }
  return { ok: true, value: obj }
}

/** Decode an envelope; `reason` says what is wrong with a malformed one. */
export function decodeEnvelope(data: Uint8Array): Decoded<Envelope> {
  const parsed = parseObject(data)
  if (!parsed.ok) return parsed
  const obj = parsed.value
  if (typeof obj.type !== 'string' || obj.type.length === 0 || obj.type.length > MAX_TYPE_LENGTH)
    return { ok: false, reason: 'missing or invalid type' }
  if (obj.type === REPLY_TYPE) return { ok: false, reason: 'a reply sent as a message' }
  if (obj.epoch !== undefined && !(Number.isSafeInteger(obj.epoch) && (obj.epoch as number) >= 0))
    return { ok: false, reason: 'invalid epoch' }
  if (!('body' in obj)) return { ok: false, reason: 'missing body' }
  return { ok: true, value: obj as unknown as Envelope }
}

/** Decode a reply envelope. */
export function decodeReply(data: Uint8Array): Decoded<ReplyEnvelope> {
  const parsed = parseObject(data)
  if (!parsed.ok) return parsed
  const obj = parsed.value
  if (obj.type !== REPLY_TYPE) return { ok: false, reason: 'not a reply' }
  if (obj.ok === true)
    return { ok: true, value: { v: 1, type: REPLY_TYPE, from: obj.from as string, ok: true, body: obj.body ?? null } }
  const e = obj.error as Record<string, unknown> | null | undefined
  if (
    obj.ok !== false ||
    e === null ||
    typeof e !== 'object' ||
    typeof e.code !== 'string' ||
    typeof e.message !== 'string'
  ) {
    return { ok: false, reason: 'malformed reply' }
  }
  return { ok: true, value: obj as unknown as ReplyEnvelope }
}

/** Describe a thrown value for a reply (BosunError code, status and details preserved). */
export function remoteErrorInfo(err: unknown): RemoteErrorInfo {
  if (err instanceof BosunError) {
    return {
      code: err.code,
      message: err.message,
      statusCode: err.statusCode,
      name: err.name,
      ...(err.details ? { details: err.details } : {}),
    }
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { code: typeof code === 'string' ? code : errors.REMOTE.code, message: err.message, name: err.name }
  }
  return { code: errors.REMOTE.code, message: typeof err === 'string' ? err : 'non-error thrown' }
}

/** Encode a reply; a body that cannot be serialised becomes an error reply. */
export function encodeReply(
  from: string,
  result: { ok: true; body: unknown } | { ok: false; error: unknown },
): Uint8Array {
  if (result.ok) {
    try {
      return encodeJson({ v: 1, type: REPLY_TYPE, from, ok: true, body: result.body ?? null })
    } catch (err) {
      return encodeJson({ v: 1, type: REPLY_TYPE, from, ok: false, error: remoteErrorInfo(err) })
    }
  }
  return encodeJson({ v: 1, type: REPLY_TYPE, from, ok: false, error: remoteErrorInfo(result.error) })
}

/**
 * The requester's view of a remote failure: BOSUN_ERR_REMOTE whose details carry the original
 * `code`, `statusCode`, `details` and the answering address (`from`).
 */
export function remoteError(info: RemoteErrorInfo, from: string, type: string): BosunError {
  return errors.REMOTE(info.message, {
    details: {
      code: info.code,
      ...(info.statusCode !== undefined ? { statusCode: info.statusCode } : {}),
      ...(info.details !== undefined ? { details: info.details } : {}),
      from,
      type,
    },
  })
}

/** The original code of a REMOTE error (`details.code`), or the error's own code. */
export function remoteCode(err: unknown): string | undefined {
  if (!(err instanceof BosunError)) return undefined
  if (err.code === errors.REMOTE.code && typeof err.details?.code === 'string') return err.details.code
  return err.code
}
