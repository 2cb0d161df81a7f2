/**
 * Request/reply without nats.js's per-request machinery: one wildcard subscription on a private
 * inbox (`<inbox>.<n>`), replies matched to callers by their token, timeouts found by one sweeping
 * timer. nats.js's `request` allocates per call a RequestOne with its own timer and deferred, and on
 * every completion — successful ones too — a RequestError with a captured stack trace
 * (`RequestOne.cancel`); a CPU profile of the boss at full throughput put that error alone at 9.6 % of
 * its time (`node dist/bench/run.js e2e --profile=batch --runs=0`).
 *
 * Failures keep nats.js's error classes, so callers classify them as before: TimeoutError (no reply
 * in time; the request may have been handled), RequestError caused by NoRespondersError (a 503
 * status reply: nobody listens), RequestError "connection disconnected" (the connection dropped with the request in
 * flight, as nats.js does), ClosedConnectionError (closed for good).
 */
import {
  createInbox,
  errors as natsErrors,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Status,
  type Subscription,
} from '@nats-io/transport-node'

/** How often timeouts are looked for: a request times out up to this much after its timeout. */
const SWEEP_MS = 25

interface Pending {
  resolve(msg: Msg): void
  reject(err: Error): void
  deadline: number
  subject: string
}

export interface InboxRequestOptions {
  timeoutMs: number
  headers?: MsgHdrs
  /** Told the request's reply subject just before the request is published. */
  onReplySubject?: (subject: string) => void
}

export class ReplyInbox {
  private readonly prefix: string
  private readonly pending = new Map<number, Pending>()
  private nextToken = 0
  private sub: Subscription | undefined
  private sweeper: NodeJS.Timeout | undefined
  private statusIter: (AsyncIterable<Status> & { stop?: () => void }) | undefined
  private closed = false

  /**
   * `prefix`: where replies are addressed (`<prefix><n>`); by default a private inbox. A shared
   * prefix lets other processes hear the replies too (api/final-pairs.ts).
   */
  constructor(
    private readonly nc: NatsConnection,
    prefix?: string,
  ) {
    this.prefix = prefix ?? `${createInbox()}.`
  }

  /** Requests waiting for their reply. */
  get inFlight(): number {
    return this.pending.size
  }

  /** Publish `data` to `subject` with a reply token; resolves with the reply. Never throws synchronously. */
  request(subject: string, data: Uint8Array, opts: InboxRequestOptions): Promise<Msg> {
    if (this.closed || this.nc.isClosed()) return Promise.reject(new natsErrors.ClosedConnectionError())
    this.start()
    const token = ++this.nextToken
    return new Promise<Msg>((resolve, reject) => {
      this.pending.set(token, { resolve, reject, deadline: Date.now() + opts.timeoutMs, subject })
      try {
        const reply = this.prefix + token
        opts.onReplySubject?.(reply)
        this.nc.publish(subject, data, {
          reply,
          ...(opts.headers ? { headers: opts.headers } : {}),
        })
      } catch (err) {
        this.pending.delete(token)
        reject(err instanceof Error ? err : new Error(String(err)))
        return
      }
      if (!this.sweeper) {
        this.sweeper = setInterval(() => this.sweep(), SWEEP_MS)
        this.sweeper.unref()
      }
    })
  }

  /** Idempotent: rejects what is in flight with ClosedConnectionError and stops listening. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.failAll(() => new natsErrors.ClosedConnectionError())
    this.statusIter?.stop?.()
    try {
      this.sub?.unsubscribe()
    } catch {
      /* the connection is closed already */
    }
  }

  private start(): void {
    if (this.sub) return
    this.sub = this.nc.subscribe(`${this.prefix}*`, { callback: (err, msg) => (err ? undefined : this.reply(msg)) })
    void this.sub.closed.then(() => this.failAll(() => new natsErrors.ClosedConnectionError()))
    void this.watchStatus()
  }

  private reply(msg: Msg): void {
    const token = Number(msg.subject.slice(this.prefix.length))
    const p = this.pending.get(token)
    if (!p) return // timed out already, or a duplicate
    this.pending.delete(token)
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      // As nats.js reports it: a RequestError whose cause is NoRespondersError (isNoResponders()).
      p.reject(new natsErrors.RequestError('no responders', { cause: new natsErrors.NoRespondersError(p.subject) }))
    } else p.resolve(msg)
  }

  private sweep(): void {
    const now = Date.now()
    for (const [token, p] of this.pending) {
      if (p.deadline > now) continue
      this.pending.delete(token)
      p.reject(new natsErrors.TimeoutError())
    }
    if (this.pending.size === 0 && this.sweeper) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  private failAll(make: () => Error): void {
    const waiting = [...this.pending.values()]
    this.pending.clear()
    for (const p of waiting) p.reject(make())
    if (this.sweeper) clearInterval(this.sweeper)
    this.sweeper = undefined
  }

  /** A dropped connection loses the replies in flight: fail them now, as nats.js does, not at their timeout. */
  private async watchStatus(): Promise<void> {
    const iter = this.nc.status() as AsyncIterable<Status> & { stop?: () => void }
    this.statusIter = iter
    try {
      for await (const s of iter) {
        if (s.type === 'disconnect') this.failAll(() => new natsErrors.RequestError('connection disconnected'))
      }
    } catch {
      /* the iterator ends with the connection */
    }
  }
}
