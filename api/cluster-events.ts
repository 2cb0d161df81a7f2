/**
 * Reading cluster events back for the API (runner/events): a page of events newest first, the
 * leadership history rebuilt from the boss events, and a live follow for Server-Sent Events.
 *
 * A page is read backwards in windows of stream sequences, each window through an ordered consumer
 * filtered on the server (one type, or all): the cost of a page depends on the window it scans, not
 * on the events retained. A filtered page may come back with fewer than `limit` events and a `next`
 * cursor when the scan budget runs out first. Anything on the stream that is not an event is dropped
 * with a warning.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import { StreamFollower } from '../jobs/streams/follow.js'
import { errors } from '../runner/errors.js'
import type { Logger } from '../runner/logger.js'
import { leadershipTerms, type LeadershipTerm } from '../runner/events/leadership.js'
import {
  eventStreamName,
  eventSubjectPrefix,
  parseStoredEvent,
  type ClusterEvent,
  type ClusterEventType,
} from '../runner/events/model.js'

export interface EventQuery {
  /** ISO time: only events at or after it. */
  since?: string
  type?: ClusterEventType
  limit: number
  /** `next` of the previous page. */
  cursor?: string
}

export interface EventPage {
  events: ClusterEvent[]
  next?: string
}

/** What the routes need (a fake in inject tests). */
export interface ClusterEventsView {
  list(q: EventQuery): Promise<EventPage>
  leadership(): Promise<LeadershipTerm[]>
  /** Live events after `afterSeq` (0: only new ones); `stop` ends the follow. */
  follow(afterSeq: number | undefined, onEvent: (e: ClusterEvent) => void): { stop(): Promise<void> }
}

/** Sequences scanned per window, and windows per page at most. */
const WINDOW = 256
const MAX_WINDOWS = 20
const CURSOR = /^[1-9]\d{0,15}$/

/** A page cursor is the sequence the next page reads below; a malformed one is a 400. */
export function parseEventCursor(cursor: string): number {
  if (!CURSOR.test(cursor)) throw errors.VALIDATION('cursor is not a cursor from a previous page')
  return Number(cursor)
}

export class StreamClusterEvents implements ClusterEventsView {
  private readonly stream: string
  private readonly prefix: string

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    cluster: string,
    private readonly log: Logger,
  ) {
    this.stream = eventStreamName(cluster)
    this.prefix = eventSubjectPrefix(cluster)
  }

  async list(q: EventQuery): Promise<EventPage> {
    const range = await this.range()
    if (!range) return { events: [] }
    let hi = q.cursor === undefined ? range.last : Math.min(range.last, parseEventCursor(q.cursor) - 1)
    const since = q.since === undefined ? undefined : Date.parse(q.since)
    const out: ClusterEvent[] = []
    for (let w = 0; w < MAX_WINDOWS && hi >= range.first; w++) {
      const lo = Math.max(range.first, hi - WINDOW + 1)
      const window = (await this.readWindow(lo, hi, q.type)).reverse()
      for (const e of window) {
        if (since !== undefined && Date.parse(e.at) < since) return { events: out }
        out.push(e)
        if (out.length === q.limit) return Number(e.id) > range.first ? { events: out, next: e.id } : { events: out }
      }
      hi = lo - 1
    }
    return hi >= range.first ? { events: out, next: String(hi + 1) } : { events: out }
  }

  async leadership(): Promise<LeadershipTerm[]> {
    const range = await this.range()
    if (!range) return []
    const events: ClusterEvent[] = []
    const follower = new StreamFollower({
      js: this.js,
      jsm: this.jsm,
      stream: this.stream,
      filter: `${this.prefix}.boss.>`,
      log: this.log,
      once: true,
      onMessage: (m) => this.decode(m, (e) => events.push(e)),
      onInitialDone: () => undefined,
    })
    await follower.finished()
    return leadershipTerms(events)
  }

  follow(afterSeq: number | undefined, onEvent: (e: ClusterEvent) => void): { stop(): Promise<void> } {
    let follower: StreamFollower | undefined
    let stopped = false
    const start = async () => {
      const from = afterSeq !== undefined && afterSeq > 0 ? afterSeq + 1 : ((await this.range())?.last ?? 0) + 1
      if (stopped) return
      follower = new StreamFollower({
        js: this.js,
        jsm: this.jsm,
        stream: this.stream,
        filter: `${this.prefix}.>`,
        log: this.log,
        fromSeq: from,
        onMessage: (m) => this.decode(m, onEvent),
        onInitialDone: () => undefined,
      })
    }
    const started = start().catch((err: unknown) => this.log.warn({ err }, 'following cluster events failed'))
    return {
      stop: async () => {
        stopped = true
        await started
        await follower?.stop()
      },
    }
  }

  /** First and last sequence of the stream; undefined when it does not exist yet or is empty. */
  private async range(): Promise<{ first: number; last: number } | undefined> {
    try {
      const { state } = await this.jsm.streams.info(this.stream)
      return state.messages === 0 ? undefined : { first: state.first_seq, last: state.last_seq }
    } catch (err) {
      if (/stream not found/i.test((err as Error).message)) return undefined
      throw errors.STORE(`cannot read cluster events: ${(err as Error).message}`, { cause: err })
    }
  }

  /** Events with sequence in [lo, hi] (of `type`, or all), oldest first. */
  private async readWindow(lo: number, hi: number, type: ClusterEventType | undefined): Promise<ClusterEvent[]> {
    const consumer = await this.js.consumers.get(this.stream, {
      filter_subjects: type === undefined ? `${this.prefix}.>` : `${this.prefix}.${type}`,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: lo,
    })
    try {
      const pending = (await consumer.info(true)).num_pending
      const out: ClusterEvent[] = []
      if (pending === 0) return out
      const batch = await consumer.fetch({ max_messages: Math.min(WINDOW, pending), expires: 5000 })
      for await (const m of batch) {
        if (m.seq > hi) break
        this.decode(m, (e) => out.push(e))
        if (m.seq === hi) break
      }
      return out
    } finally {
      await consumer.delete().catch(() => undefined)
    }
  }

  private decode(m: { seq: number; subject: string; json(): unknown }, use: (e: ClusterEvent) => void): void {
    let body: unknown
    try {
      body = m.json()
    } catch {
      body = undefined
    }
    const e = parseStoredEvent(body, m.seq)
    if (e) use(e)
    else this.log.warn({ seq: m.seq, subject: m.subject }, 'not a cluster event: dropped')
  }
}
