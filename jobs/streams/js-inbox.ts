/**
 * JetStream requests through the process's ReplyInbox (runner/transport/reply-inbox.ts) instead of
 * nats.js's `js.publish` / `jsm.streams.*`: the same PUB, the same API subjects and the same
 * answers, minus nats.js's per-request timer, deferred and stack-captured RequestError (on success
 * too). Errors keep @nats-io/jetstream's classes (JetStreamApiError with the server's code), so
 * store-codec.ts classifies them as before.
 * - `jsPublish`: every store write (through `js.publish` it was ≈ 10 % of the boss's CPU).
 * - `jsDeleteMessage`: deleting a closed batch's SUBMIT and STATE messages (through
 *   `jsm.streams.deleteMessage`, 2 % of the boss's CPU in a one-by-one run, where every job is a batch).
 * - `jsGetMessage`: direct reads (`STREAM.MSG.GET`): the API's `GET /jobs/:id`, listing pages, the
 *   boss's reads at takeover.
 */
import { JetStreamApiError, type PubAck } from '@nats-io/jetstream'
import { headers, type MsgHdrs } from '@nats-io/transport-node'
import type { ReplyInbox } from '../../runner/transport/reply-inbox.js'

export interface JsPublishOptions {
  timeoutMs: number
  /** Deduplication id (`Nats-Msg-Id`). */
  msgId?: string
  /** Compare-and-set (`Nats-Expected-Last-Subject-Sequence`; 0: the subject has no message). */
  expectLastSubjectSequence?: number
  /** Told the reply subject on which JetStream will acknowledge the write, just before it is sent. */
  onReplySubject?: (subject: string) => void
}

const decoder = new TextDecoder()

type ApiErrorBody = ConstructorParameters<typeof JetStreamApiError>[0]

/** The error for an answer that is not JetStream's (`what()` names the request; built only on failure). */
const invalidReply = (what: () => string) => new Error(`invalid JetStream reply to ${what()}`)

/**
 * A JetStream answer as a JSON object; anything else (not JSON, `null`, an array, a number) is an
 * `invalid JetStream reply to <what>`. An `error` in it is the server's error, with its class.
 */
function decodeReply<T extends object>(data: Uint8Array, what: () => string): Partial<T> {
  let reply: unknown
  try {
    reply = JSON.parse(decoder.decode(data))
  } catch {
    reply = undefined
  }
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) throw invalidReply(what)
  const { error } = reply as { error?: ApiErrorBody | null }
  if (typeof error === 'object' && error !== null) throw new JetStreamApiError(error)
  return reply
}

/** Headers of the most frequent write, a create-if-absent: built once (a publish only reads them). */
let createOnly: MsgHdrs | undefined

function headersFor(opts: JsPublishOptions): MsgHdrs | undefined {
  const { msgId, expectLastSubjectSequence: expect } = opts
  if (msgId === undefined && expect === undefined) return undefined
  if (msgId === undefined && expect === 0) {
    if (!createOnly) {
      createOnly = headers()
      createOnly.set('Nats-Expected-Last-Subject-Sequence', '0')
    }
    return createOnly
  }
  const h = headers()
  if (msgId !== undefined) h.set('Nats-Msg-Id', msgId)
  if (expect !== undefined) h.set('Nats-Expected-Last-Subject-Sequence', String(expect))
  return h
}

/** Store `data` under `subject`; resolves with the stream's ack, rejects with the server's error. */
export async function jsPublish(
  inbox: ReplyInbox,
  subject: string,
  data: Uint8Array,
  opts: JsPublishOptions,
): Promise<PubAck> {
  const h = headersFor(opts)
  const msg = await inbox.request(subject, data, {
    timeoutMs: opts.timeoutMs,
    ...(h ? { headers: h } : {}),
    ...(opts.onReplySubject ? { onReplySubject: opts.onReplySubject } : {}),
  })
  const what = () => `publishing ${subject}`
  const ack = decodeReply<PubAck>(msg.data, what)
  if (typeof ack.stream !== 'string' || ack.stream === '' || typeof ack.seq !== 'number') throw invalidReply(what)
  return { stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate === true, domain: ack.domain ?? '' }
}

/** The JetStream API prefix of the job store's manager (`jetstreamManager(nc)`, no domain). */
const JS_API = '$JS.API'
const encoder = new TextEncoder()

/** Delete the message at `seq` of `stream` without a tombstone; rejects with the server's error. */
export async function jsDeleteMessage(
  inbox: ReplyInbox,
  stream: string,
  seq: number,
  timeoutMs: number,
): Promise<void> {
  const body = encoder.encode(JSON.stringify({ seq, no_erase: true }))
  const msg = await inbox.request(`${JS_API}.STREAM.MSG.DELETE.${stream}`, body, { timeoutMs })
  const what = () => `deleting ${stream}#${seq}`
  if (decodeReply<{ success: unknown }>(msg.data, what).success !== true) throw invalidReply(what)
}

/** A stored message as a direct read returns it (headers are not needed by any reader). */
export interface JsStoredMessage {
  seq: number
  subject: string
  data: Uint8Array
  /** When the store took it (epoch ms), when the answer says. */
  time?: number
}

/** JetStream's "no message found" (`JetStreamApiCodes.NoMessageFound`): a read of nothing. */
const NO_MESSAGE_FOUND = 10037
const EMPTY = new Uint8Array(0)

/**
 * Read one message of `stream` (`query`: `{ seq }`, `{ last_by_subj }` or `{ next_by_subj, seq }`);
 * null when there is none, as `jsm.streams.getMessage` answers. Rejects with the server's error.
 */
export async function jsGetMessage(
  inbox: ReplyInbox,
  stream: string,
  query: Record<string, unknown>,
  timeoutMs: number,
): Promise<JsStoredMessage | null> {
  const msg = await inbox.request(`${JS_API}.STREAM.MSG.GET.${stream}`, encoder.encode(JSON.stringify(query)), {
    timeoutMs,
  })
  const what = () => `reading ${stream}`
  let reply: Partial<{ message: { subject?: unknown; seq?: unknown; data?: unknown; time?: unknown } }>
  try {
    reply = decodeReply(msg.data, what)
  } catch (err) {
    if (err instanceof JetStreamApiError && err.code === NO_MESSAGE_FOUND) return null
    throw err
  }
  const m = reply.message
  if (
    typeof m !== 'object' ||
    m === null ||
    typeof m.subject !== 'string' ||
    typeof m.seq !== 'number' ||
    (m.data !== undefined && typeof m.data !== 'string')
  )
    throw invalidReply(what)
  const data = m.data === undefined || m.data === '' ? EMPTY : Buffer.from(m.data, 'base64')
  const time = typeof m.time === 'string' ? Date.parse(m.time) : Number.NaN
  return Number.isFinite(time)
    ? { seq: m.seq, subject: m.subject, data, time }
    : { seq: m.seq, subject: m.subject, data }
}
