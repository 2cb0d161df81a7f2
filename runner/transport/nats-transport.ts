/**
 * The runtime's Transport on NATS core: one subscription on the process's address
 * (`bosun.<cluster>.proc.<nodeId>`), JSON envelopes dispatched by `type`, request/reply with coded
 * errors, connection status mapped to TransportStatus.
 *
 * Remote errors: a handler that throws answers `{ ok: false, error: { code, message, statusCode?,
 * details? } }`; the requester rejects with BOSUN_ERR_REMOTE whose `details.code` is the original
 * code (see `remoteCode()` in envelope.ts), `details.statusCode`/`details.details` the rest.
 *
 * Malformed input (bad JSON, wrong shape, unknown type) is dropped with a warning and counted in
 * `dropped`; when it came as a request, the requester gets a BOSUN_ERR_BAD_MESSAGE remote error at
 * once instead of waiting for its timeout. Nothing a peer sends can throw here or crash the process.
 */
import { EventEmitter } from 'node:events'
import {
  errors as natsErrors,
  type Msg,
  type NatsConnection,
  type Status,
  type Subscription,
} from '@nats-io/transport-node'
import type { Envelope, MessageHandler, RequestOptions, Transport, TransportStatus } from '../contracts.js'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import { decodeEnvelope, decodeReply, encodeEnvelope, encodeReply, remoteError } from './envelope.js'
import { ReplyInbox } from './reply-inbox.js'
import { procSubject } from './subjects.js'

/** Default request timeout. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5000
/** How long close() waits for handlers still running before it drains the connection. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5000

export interface NatsTransportOptions {
  nc: NatsConnection
  cluster: string
  nodeId: string
  logger: Logger
  /** @defaultValue {@link DEFAULT_REQUEST_TIMEOUT_MS} */
  defaultTimeoutMs?: number
  /**
   * close() drains the NATS connection too (the transport owns it). Set false when the connection
   * is shared and closed by its owner.
   * @defaultValue true
   */
  ownsConnection?: boolean
  /** @defaultValue {@link DEFAULT_CLOSE_TIMEOUT_MS} */
  closeTimeoutMs?: number
}

/** Listener for envelopes on an arbitrary subject (see {@link NatsTransport.listen}). */
export type EnvelopeListener = (envelope: Envelope, subject: string) => void

export class NatsTransport extends EventEmitter implements Transport {
  /** This process's address: `bosun.<cluster>.proc.<nodeId>`. */
  readonly address: string
  readonly cluster: string
  readonly nodeId: string
  /** Malformed or unhandled messages dropped so far. */
  dropped = 0
  private readonly nc: NatsConnection
  private readonly log: Logger
  private readonly defaultTimeoutMs: number
  private readonly ownsConnection: boolean
  private readonly closeTimeoutMs: number
  private readonly handlers = new Map<string, MessageHandler>()
  private readonly inFlight = new Set<Promise<void>>()
  private readonly subs = new Set<Subscription>()
  /** Requests' replies (one wildcard subscription, not nats.js's per-request machinery). */
  private readonly inbox: ReplyInbox
  private addressSub: Subscription | undefined
  private state: TransportStatus = 'connected'
  private statusIter: (AsyncIterable<Status> & { stop?: () => void }) | undefined
  private closing: Promise<void> | undefined

  constructor(opts: NatsTransportOptions) {
    super()
    this.nc = opts.nc
    this.cluster = opts.cluster
    this.nodeId = opts.nodeId
    this.address = procSubject(opts.cluster, opts.nodeId)
    this.log = opts.logger.child({ component: 'transport', address: this.address })
    this.defaultTimeoutMs = opts.defaultTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    this.ownsConnection = opts.ownsConnection ?? true
    this.closeTimeoutMs = opts.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS
    this.inbox = new ReplyInbox(this.nc)
    if (this.nc.isClosed()) this.state = 'closed'
    else void this.watchStatus()
  }

  /** True while the connection is up (not disconnected, reconnecting or closed). */
  get connected(): boolean {
    return (
      this.closing === undefined && !this.nc.isClosed() && (this.state === 'connected' || this.state === 'reconnected')
    )
  }

  /** The last connection status seen. */
  get status(): TransportStatus {
    return this.state
  }

  /** Fire-and-forget. Returns false (never throws) when closed, disconnected or the message cannot be sent. */
  send(address: string, type: string, body: unknown, opts: { epoch?: number } = {}): boolean {
    if (!this.connected) return false
    try {
      this.nc.publish(address, encodeEnvelope(type, this.address, body, opts.epoch))
      return true
    } catch (err) {
      this.log.warn({ err, to: address, type }, 'message not sent')
      return false
    }
  }

  /**
   * Request/reply. Rejects with BOSUN_ERR_REQUEST_TIMEOUT, BOSUN_ERR_NO_RESPONDERS, BOSUN_ERR_REMOTE
   * (the handler threw; original code in `details.code`), BOSUN_ERR_NATS_NOT_CONNECTED (disconnected:
   * fails fast rather than waiting for the timeout), BOSUN_ERR_BAD_MESSAGE (body not serialisable,
   * bad address, malformed reply) or BOSUN_ERR_CLOSED.
   */
  async request<R = unknown>(address: string, type: string, body: unknown, opts: RequestOptions = {}): Promise<R> {
    if (this.closing !== undefined || this.nc.isClosed()) throw errors.CLOSED('transport is closed')
    if (!this.connected) {
      // Nothing was sent: callers may treat the request as never received.
      throw errors.NATS_NOT_CONNECTED(`not connected to NATS (request ${type} to ${address})`, {
        details: { to: address, type, sent: false },
      })
    }
    const data = encodeEnvelope(type, this.address, body, opts.epoch)
    const timeout = opts.timeoutMs ?? this.defaultTimeoutMs
    let msg: Msg
    try {
      msg = await this.inbox.request(address, data, { timeoutMs: timeout })
    } catch (err) {
      throw this.requestError(err, address, type, timeout)
    }
    const reply = decodeReply(msg.data)
    if (!reply.ok)
      throw errors.BAD_MESSAGE(`malformed reply from ${address} to ${type}: ${reply.reason}`, {
        details: { to: address, type },
      })
    if (reply.value.ok) return reply.value.body as R
    throw remoteError(reply.value.error, reply.value.from, type)
  }

  /**
   * Handle messages of `type` sent to this address. The first call subscribes the address. The
   * return value (or resolved value) is the reply to a request; a throw becomes an error reply.
   * Registering a type again replaces its handler. The subscription reaches the server
   * asynchronously: await {@link flush} when a peer must be able to reach us right away.
   */
  handle(type: string, handler: MessageHandler): void {
    if (this.closing !== undefined) throw errors.CLOSED('transport is closed')
    if (this.handlers.has(type)) this.log.debug({ type }, 'handler replaced')
    this.handlers.set(type, handler)
    if (this.addressSub === undefined) {
      this.addressSub = this.subscribe(this.address, (msg) => this.dispatch(msg))
    }
  }

  /** Resolves once the server has processed every subscription made so far (a NATS flush). */
  async flush(): Promise<void> {
    if (this.closing !== undefined || this.nc.isClosed()) throw errors.CLOSED('transport is closed')
    await this.nc.flush()
  }

  /** Stop handling `type` (later messages of that type are dropped as unknown). */
  unhandle(type: string): void {
    this.handlers.delete(type)
  }

  /**
   * Receive envelopes published to any subject (e.g. `jobEventSubject(cluster, id)`), not only to
   * this address. Malformed messages are dropped with a warning. Returns an unsubscribe function.
   */
  listen(subject: string, listener: EnvelopeListener): () => void {
    return this.listenRaw(subject, (data, msgSubject, msg) => {
      const decoded = decodeEnvelope(data)
      if (!decoded.ok) return this.drop(msg, decoded.reason)
      listener(decoded.value, msgSubject)
    })
  }

  /**
   * Receive the bytes of messages that are not bosun envelopes (e.g. JetStream's acknowledgements
   * on `finalAcksSubjects`). A listener that throws is logged. Returns an unsubscribe function.
   */
  listenRaw(subject: string, listener: (data: Uint8Array, subject: string, msg: Msg) => void): () => void {
    if (this.closing !== undefined) throw errors.CLOSED('transport is closed')
    const sub = this.subscribe(subject, (msg) => {
      try {
        listener(msg.data, msg.subject, msg)
      } catch (err) {
        this.log.error({ err, subject: msg.subject }, 'listener threw')
      }
    })
    return () => {
      this.subs.delete(sub)
      try {
        sub.unsubscribe()
      } catch {
        /* connection already closed */
      }
    }
  }

  override on(event: 'status', listener: (status: TransportStatus) => void): this {
    return super.on(event, listener)
  }

  override off(event: 'status', listener: (status: TransportStatus) => void): this {
    return super.off(event, listener)
  }

  /**
   * Idempotent. Stops taking messages, lets running handlers answer (up to closeTimeoutMs), then
   * drains the connection when the transport owns it. Later send() returns false, request() rejects.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose(): Promise<void> {
    for (const sub of this.subs) {
      try {
        await sub.drain()
      } catch {
        /* already closed */
      }
    }
    this.subs.clear()
    if (this.inFlight.size > 0) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, this.closeTimeoutMs)))
      await Promise.race([Promise.allSettled([...this.inFlight]), timeout])
      clearTimeout(timer)
    }
    if (this.ownsConnection && !this.nc.isClosed()) {
      try {
        await this.nc.drain()
      } catch (err) {
        this.log.debug({ err }, 'drain failed; closing')
        await this.nc.close().catch(() => undefined)
      }
    }
    this.inbox.close()
    this.statusIter?.stop?.()
    this.setState('closed')
  }

  private subscribe(subject: string, onMsg: (msg: Msg) => void): Subscription {
    const sub = this.nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) {
          this.log.error({ err, subject }, 'subscription error')
          return
        }
        try {
          onMsg(msg)
        } catch (e) {
          this.log.error({ err: e, subject }, 'message processing failed')
        }
      },
    })
    this.subs.add(sub)
    return sub
  }

  private dispatch(msg: Msg): void {
    const decoded = decodeEnvelope(msg.data)
    if (!decoded.ok) return this.drop(msg, decoded.reason)
    const env = decoded.value
    const handler = this.handlers.get(env.type)
    if (handler === undefined) return this.drop(msg, `unknown type ${JSON.stringify(env.type)}`, env.from)
    const run = (async () => {
      let result: { ok: true; body: unknown } | { ok: false; error: unknown }
      try {
        result = { ok: true, body: await handler(env.body, env) }
      } catch (err) {
        result = { ok: false, error: err }
        this.log.debug({ err, type: env.type, from: env.from }, 'handler threw')
      }
      if (msg.reply) this.respond(msg, result)
    })()
    this.inFlight.add(run)
    void run.finally(() => this.inFlight.delete(run))
  }

  private respond(msg: Msg, result: { ok: true; body: unknown } | { ok: false; error: unknown }): void {
    try {
      msg.respond(encodeReply(this.address, result))
    } catch (err) {
      this.log.warn({ err, reply: msg.reply }, 'reply not sent')
    }
  }

  private drop(msg: Msg, reason: string, from?: string): void {
    this.dropped++
    this.log.warn({ subject: msg.subject, reason, from, bytes: msg.data.length }, 'dropped malformed message')
    if (msg.reply) this.respond(msg, { ok: false, error: errors.BAD_MESSAGE(`message dropped: ${reason}`) })
  }

  private requestError(err: unknown, address: string, type: string, timeout: number): Error {
    const details = { to: address, type }
    if (err instanceof natsErrors.TimeoutError) {
      return errors.REQUEST_TIMEOUT(`no reply from ${address} to ${type} within ${timeout} ms`, { cause: err, details })
    }
    if (err instanceof natsErrors.RequestError && err.isNoResponders()) {
      return errors.NO_RESPONDERS(`no process listens at ${address}`, { cause: err, details })
    }
    if (err instanceof natsErrors.InvalidArgumentError && /max_payload/.test(err.message)) {
      return errors.BODY_TOO_LARGE(`${type} to ${address} exceeds the NATS max_payload`, { cause: err, details })
    }
    if (err instanceof natsErrors.InvalidSubjectError || err instanceof natsErrors.InvalidArgumentError) {
      return errors.BAD_MESSAGE(`invalid address ${JSON.stringify(address)}`, { cause: err, details })
    }
    if (err instanceof natsErrors.ClosedConnectionError || err instanceof natsErrors.DrainingConnectionError) {
      return errors.CLOSED('NATS connection is closed', { cause: err, details })
    }
    return errors.NATS_NOT_CONNECTED(
      `request ${type} to ${address} failed: ${(err as Error)?.message ?? String(err)}`,
      { cause: err, details },
    )
  }

  private async watchStatus(): Promise<void> {
    const iter = this.nc.status() as AsyncIterable<Status> & { stop?: () => void }
    this.statusIter = iter
    try {
      for await (const s of iter) {
        switch (s.type) {
          case 'disconnect':
            this.log.warn({ server: s.server }, 'NATS disconnected')
            this.setState('disconnected')
            break
          case 'reconnecting':
            this.setState('reconnecting')
            break
          case 'reconnect':
            this.log.info({ server: s.server }, 'NATS reconnected')
            this.setState('reconnected')
            break
          case 'close':
            this.setState('closed')
            return
          case 'error':
            this.log.error({ err: s.error }, 'NATS server error')
            break
          case 'ldm':
            this.log.info({ server: s.server }, 'NATS server entering lame duck mode')
            break
          case 'staleConnection':
            this.log.warn('NATS connection stale; reconnecting')
            break
          case 'slowConsumer':
            this.log.warn({ subject: s.sub.getSubject(), pending: s.pending }, 'NATS slow consumer')
            break
          default:
            break
        }
      }
    } catch (err) {
      this.log.error({ err }, 'status watch ended')
    }
  }

  private setState(next: TransportStatus): void {
    if (this.state === next) return
    this.state = next
    try {
      this.emit('status', next)
    } catch (err) {
      this.log.error({ err, status: next }, 'status listener threw')
    }
  }
}
