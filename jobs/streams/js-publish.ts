/**
 * A JetStream publish through the process's ReplyInbox (runner/transport/reply-inbox.ts) instead of
 * `js.publish`: the same PUB with the same headers and the same PubAck, minus nats.js's per-request
 * timer, deferred and stack-captured RequestError. Errors keep @nats-io/jetstream's classes
 * (JetStreamApiError with the server's code), so store-codec.ts classifies them as before. The
 * boss's other per-batch request, deleting a closed batch's SUBMIT message, goes the same way
 * (`jsDeleteMessage`): through `jsm.streams.deleteMessage` it was 2 % of the boss's CPU in a
 * one-by-one run, where every job is a batch.
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
}

const decoder = new TextDecoder()

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
  const msg = await inbox.request(subject, data, { timeoutMs: opts.timeoutMs, ...(h ? { headers: h } : {}) })
  let ack: Partial<PubAck> & { error?: ConstructorParameters<typeof JetStreamApiError>[0] }
  try {
    ack = JSON.parse(decoder.decode(msg.data)) as typeof ack
  } catch {
    throw new Error(`invalid JetStream ack for ${subject}`)
  }
  if (ack.error) throw new JetStreamApiError(ack.error)
  if (typeof ack.stream !== 'string' || ack.stream === '' || typeof ack.seq !== 'number')
    throw new Error(`invalid JetStream ack for ${subject}`)
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
  let reply: { success?: unknown; error?: ConstructorParameters<typeof JetStreamApiError>[0] }
  try {
    reply = JSON.parse(decoder.decode(msg.data)) as typeof reply
  } catch {
    throw new Error(`invalid JetStream reply to deleting ${stream}#${seq}`)
  }
  if (reply.error) throw new JetStreamApiError(reply.error)
  if (reply.success !== true) throw new Error(`invalid JetStream reply to deleting ${stream}#${seq}`)
}
