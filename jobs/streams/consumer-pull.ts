/**
 * One ephemeral pull consumer's messages, in order, as an async iterable: the transport under every
 * stream follow (jobs/streams/follow.ts). Written here instead of nats.js's `consume()` because of a
 * defect of nats-server 2.9.10, the server this project runs on: when a message reaches a pull
 * request in the moment its expiry passes, the server drops the request without the `408 Request
 * Timeout` that tells the client how many messages it still owed (nats-server commit df282a221,
 * fixed in 2.9.16; `docs/experiments/pull-request-drop.mjs` shows it on this machine). nats.js then
 * counts the request as open and pulls nothing more until two idle heartbeats are missed — a stall of
 * 1–1.5 s, seen as the boss's SUBMIT consumer "going silent" under load and as `?wait` p99s of
 * 0.3–1.5 s in the compare bench.
 *
 * Here pull requests never expire: the server ends one only when it has delivered its batch, so
 * what the client asked for minus what it received is exactly what the server still owes, and a new
 * request tops that up to `batch`. Without expiries there are no idle heartbeats either; instead, when
 * nothing has come for `idleCheckMs`, one consumer-info request asks the server whether it holds our
 * requests and whether it has messages for us it did not send. No request waiting, or messages
 * pending: the requests were lost (a server restart in a cluster, say) — the accounting starts over
 * and a new request goes out. The consumer gone: the iterable ends with `ended === 'deleted'`; no
 * answer: `'silent'`; a gap in delivery sequences: `'gap'`. The follower then starts a new consumer
 * where it was.
 */
import { randomBytes } from 'node:crypto'
import { createInbox, nanos, type Msg, type NatsConnection, type Subscription } from '@nats-io/transport-node'
import { AckPolicy, type ConsumerConfig, type ConsumerInfo, type JetStreamManager } from '@nats-io/jetstream'
import type { Logger } from '../../runner/logger.js'

/** A message as a follow delivers it. */
export interface PulledMessage {
  readonly subject: string
  readonly data: Uint8Array
  /** Stream sequence. */
  readonly seq: number
  /** Messages left for the consumer after this one, as the server counted when it sent it. */
  readonly pending: number
  /** When the stream stored it, epoch ms. */
  readonly storedAtMs: number
  json<T = unknown>(): T
}

export interface PullSettings {
  /** Messages requested and not yet received, at most (a new request tops up to this when it falls to ¾). */
  batch: number
  /** After this long without a message, ask the server for the consumer's state. */
  idleCheckMs: number
  /** How long that question may take before the consumer counts as silent. */
  checkTimeoutMs: number
}

/**
 * Defaults: 1,000 messages requested make a large stream's initial load fast; idle, one
 * consumer-info request a second (what nats.js's pulls with a 1 s expiry cost, without their two
 * heartbeats); a server that does not answer it within 1 s ends the pull.
 */
export const PULL_DEFAULTS: PullSettings = { batch: 1000, idleCheckMs: 1000, checkTimeoutMs: 1000 }

/** Why a pull ended. */
export type PullEnd = 'stopped' | 'silent' | 'gap' | 'deleted' | 'failed'

/** What the consumer is created with: where it starts and what it filters. */
export type PullStart = Pick<ConsumerConfig, 'filter_subject' | 'deliver_policy' | 'opt_start_seq' | 'opt_start_time'>

/** A consumer unused for this long is removed by the server (a follower that died without deleting it). */
const INACTIVE_MS = 5 * 60_000

/** Create the consumer and start pulling; `pendingAtStart` is what the server counted at creation. */
export async function openPull(
  nc: NatsConnection,
  jsm: JetStreamManager,
  stream: string,
  start: PullStart,
  log: Logger,
  settings: PullSettings = PULL_DEFAULTS,
): Promise<ConsumerPull> {
  const name = `f_${randomBytes(8).toString('hex')}`
  const info = await jsm.consumers.add(stream, {
    ...start,
    name,
    ack_policy: AckPolicy.None,
    max_deliver: 1,
    mem_storage: true,
    num_replicas: 1,
    inactive_threshold: nanos(INACTIVE_MS),
  })
  return new ConsumerPull(nc, jsm, stream, name, info.num_pending, settings, log)
}

export class ConsumerPull implements AsyncIterable<PulledMessage> {
  /** Why it ended; undefined while it runs. */
  ended: PullEnd | undefined
  private readonly inbox = createInbox()
  private readonly nextSubject: string
  private readonly infoSubject: string
  private readonly sub: Subscription
  /** Messages requested and not received. */
  private owed = 0
  private serial = 0
  private deliverySeq = 0
  private lastHeard = performance.now()
  private checking = false
  private readonly tick: NodeJS.Timeout
  private queue: PulledMessage[] = []
  private head = 0
  private wake: (() => void) | undefined

  constructor(
    private readonly nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    private readonly stream: string,
    readonly name: string,
    /** Messages the consumer had to deliver when it was created. */
    readonly pendingAtStart: number,
    private readonly s: PullSettings,
    private readonly log: Logger,
  ) {
    this.nextSubject = `$JS.API.CONSUMER.MSG.NEXT.${stream}.${name}`
    this.infoSubject = `$JS.API.CONSUMER.INFO.${stream}.${name}`
    this.sub = nc.subscribe(`${this.inbox}.*`, { callback: (err, msg) => this.receive(err, msg) })
    this.tick = setInterval(() => this.onTick(), Math.max(50, s.idleCheckMs / 2))
    this.tick.unref()
    this.topUp()
  }

  /** Idempotent: ends the iteration and deletes the consumer (best effort). */
  stop(): void {
    this.end('stopped')
  }

  [Symbol.asyncIterator](): AsyncIterator<PulledMessage> {
    return { next: () => this.next() }
  }

  private next(): Promise<IteratorResult<PulledMessage>> {
    if (this.head < this.queue.length) {
      const value = this.queue[this.head++]!
      if (this.head === this.queue.length) {
        this.queue = []
        this.head = 0
      }
      return Promise.resolve({ value, done: false })
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true })
    return new Promise<void>((r) => (this.wake = r)).then(() => this.next())
  }

  private receive(err: Error | null, msg: Msg): void {
    if (this.ended) return
    if (err) return this.end('failed', err)
    this.lastHeard = performance.now()
    const code = msg.headers?.code ?? 0
    if (code !== 0 && !msg.reply) return this.status(msg, code, msg.headers?.description ?? '')
    const m = this.message(msg)
    if (!m) {
      this.log.warn({ stream: this.stream, subject: msg.subject, reply: msg.reply }, 'not a stream message: dropped')
      return
    }
    if (m.deliverySeq !== this.deliverySeq + 1) return this.end('gap')
    this.deliverySeq = m.deliverySeq
    this.owed--
    this.queue.push(m.message)
    this.topUp()
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  /** A status on one request's reply subject: it ended with what it still owed (nothing else is expected). */
  private status(msg: Msg, code: number, description: string): void {
    if (code === 100) return
    if (code === 409 && /consumer deleted/i.test(description)) return this.end('deleted')
    if (code === 400 || code === 503) {
      this.log.warn({ stream: this.stream, code, description }, 'pull request refused')
      return this.end('failed')
    }
    const left = Number(msg.headers?.get('Nats-Pending-Messages') ?? '')
    this.log.debug({ stream: this.stream, code, description, left }, 'pull request ended early')
    this.owed = Number.isSafeInteger(left) && left > 0 ? Math.max(0, this.owed - left) : 0
    this.topUp()
  }

  private message(msg: Msg): { message: PulledMessage; deliverySeq: number } | undefined {
    // $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<nanos>.<pending>, or the form with a
    // domain and account hash after ACK (and a random token at the end).
    const t = msg.reply?.split('.')
    if (!t || t[0] !== '$JS' || t[1] !== 'ACK' || t.length < 9) return undefined
    const at = t.length === 9 ? 4 : 6
    const seq = Number(t[at + 1])
    const deliverySeq = Number(t[at + 2])
    const storedAtMs = Math.floor(Number(t[at + 3]) / 1e6)
    const pending = Number(t[at + 4])
    if (!Number.isSafeInteger(seq) || !Number.isSafeInteger(deliverySeq)) return undefined
    const { subject, data } = msg
    return { message: { subject, data, seq, pending, storedAtMs, json: () => msg.json() }, deliverySeq }
  }

  /** Keep `batch` messages requested: a new request when what is owed falls to ¾ of it. */
  private topUp(): void {
    if (this.ended || this.owed > this.s.batch * 0.75) return
    const batch = this.s.batch - this.owed
    this.owed += batch
    try {
      this.nc.publish(this.nextSubject, JSON.stringify({ batch }), { reply: `${this.inbox}.${++this.serial}` })
    } catch (err) {
      this.end('failed', err)
    }
  }

  private onTick(): void {
    if (this.checking || performance.now() - this.lastHeard < this.s.idleCheckMs) return
    this.checking = true
    void this.check().finally(() => (this.checking = false))
  }

  /** Quiet for a while: does the server still hold our requests, and nothing it should have sent? */
  private async check(): Promise<void> {
    const asked = performance.now()
    let info: Partial<ConsumerInfo> & { error?: { code?: number; description?: string } }
    try {
      const reply = await this.nc.request(this.infoSubject, '', { timeout: this.s.checkTimeoutMs })
      info = reply.json()
    } catch (err) {
      if (this.ended) return
      this.log.debug({ err, stream: this.stream }, 'consumer info unanswered')
      return this.end('silent')
    }
    if (this.ended) return
    if (info.error) return this.end(info.error.code === 404 ? 'deleted' : 'failed', info.error)
    // Something arrived meanwhile: the consumer is alive; the next quiet spell asks again.
    if (this.lastHeard > asked) return
    this.lastHeard = performance.now()
    if (info.num_waiting === 0 || (info.num_pending ?? 0) > 0) {
      this.log.info(
        { stream: this.stream, owed: this.owed, waiting: info.num_waiting, pending: info.num_pending },
        'pull requests lost at the server; pulling again',
      )
      this.owed = 0
      this.topUp()
    }
  }

  private end(why: PullEnd, err?: unknown): void {
    if (this.ended) return
    this.ended = why
    clearInterval(this.tick)
    this.sub.unsubscribe()
    if (why === 'failed') this.log.warn({ err, stream: this.stream }, 'stream pull failed')
    this.jsm.consumers.delete(this.stream, this.name).catch(() => undefined)
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }
}
