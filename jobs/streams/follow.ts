/**
 * Following a stream in order: every message through a subject filter from the start, then an
 * "initial load done" signal, then every later message — across NATS restarts and reconnects. It
 * runs on JetStream ordered consumers, which the client recreates from the last delivered sequence
 * after a hiccup; when one gives up entirely a new one starts from that sequence, so nothing is
 * skipped. With `once`, it stops after the initial load (a scan).
 *
 * When is the initial load done? Before creating its consumer the follower reads the stream's last
 * sequence S; the load is done when nothing was pending at creation, or a delivered message has
 * sequence ≥ S, or nothing is pending after it — whichever comes first.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import type { Logger } from '../../runner/logger.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import { isClosedConnection } from '../store-codec.js'

/** Messages per pull: big batches make the initial load of a large stream fast. */
const PULL_BATCH = 1000
/**
 * Pull expiry. The server sends an idle heartbeat every half of it (500 ms, nats.js's least), and two
 * missed ones recreate the consumer. A consumer that goes silent (the boss's SUBMIT consumer did,
 * cause unknown, in 2 of 9 benchmark runs under a burst of one-by-one submits) so stalls the follow
 * for ≈ 1.5 s, where 4 s of expiry stalled the boss's intake for ≈ 6 s
 * (test/jobs/follow-silent.test.ts). Idle, it costs one pull request a second.
 */
const PULL_EXPIRES_MS = 1000
/**
 * Longest stretch of message handling without giving the event loop a turn: a pull delivers up to
 * PULL_BATCH messages as microtasks, and a boss reading a large backlog must still answer its
 * ZooKeeper liveness probe (a stall of half the session timeout deposes it).
 */
const MAX_SLICE_MS = 20

export interface FollowOptions {
  js: JetStreamClient
  jsm: JetStreamManager
  stream: string
  filter: string
  log: Logger
  onMessage(m: JsMsg): void
  onInitialDone(): void
  /** The follow ended for good (the connection closed). */
  onError?(err: unknown): void
  /** Stop after the initial load. */
  once?: boolean
  /** Start at this stream sequence instead of the first message. */
  fromSeq?: number
  /** Start at the first message stored at or after this time (epoch ms) instead; `fromSeq` wins. */
  fromTime?: number
}

export class StreamFollower {
  private stopped = false
  private initialDone = false
  private lastSeq: number
  private target = 0
  private targetRead = false
  private current: { stop(): void } | undefined
  private statusIter: (AsyncIterable<{ type: string }> & { stop(): void }) | undefined
  private readonly done: Promise<void>

  constructor(private readonly o: FollowOptions) {
    this.lastSeq = Math.max(0, (o.fromSeq ?? 1) - 1)
    this.done = this.run()
    if (!o.once) void this.restartOnReconnect()
  }

  /** Stream sequence of the last delivered message (before the first: `fromSeq - 1`, or 0). */
  get lastSequence(): number {
    return this.lastSeq
  }

  /** Idempotent; resolves when the consumer is stopped. */
  async stop(): Promise<void> {
    this.stopped = true
    this.current?.stop()
    this.statusIter?.stop()
    await this.done
  }

  /** The stream's last sequence when the follow started (the end of the initial load). */
  get initialTarget(): number {
    return this.target
  }

  /** Resolves when the follow ended (stopped, or the scan finished). */
  finished(): Promise<void> {
    return this.done
  }

  private async restartOnReconnect(): Promise<void> {
    const nc = this.o.js as unknown as { nc: { status(): AsyncIterable<{ type: string }> & { stop(): void } } }
    this.statusIter = nc.nc.status()
    try {
      for await (const s of this.statusIter) {
        if (this.stopped) return
        if (s.type === 'reconnect') {
          this.o.log.info({ stream: this.o.stream, last: this.lastSeq }, 'NATS reconnected; resuming the stream')
          this.current?.stop()
        }
      }
    } catch {
      /* status iterator ended */
    }
  }

  private async run(): Promise<void> {
    let failures = 0
    while (!this.stopped) {
      try {
        await this.consumeOnce()
        failures = 0
        if (this.o.once && this.initialDone) return
      } catch (err) {
        if (isClosedConnection(err)) return this.fail(err)
        failures++
        this.o.log.warn(
          { err, stream: this.o.stream, last: this.lastSeq, failures },
          'stream follow interrupted; resuming',
        )
      }
      if (this.stopped) return
      if ((this.o.js as unknown as { nc: { isClosed(): boolean } }).nc.isClosed()) {
        this.statusIter?.stop()
        return this.fail(new Error('NATS connection closed'))
      }
      await sleep(retryDelay(failures))
    }
  }

  private fail(err: unknown): void {
    this.o.log.error({ err, stream: this.o.stream }, 'stream follow stopped')
    try {
      this.o.onError?.(err)
    } catch (e) {
      this.o.log.error({ err: e }, 'follow error listener threw')
    }
  }

  private async consumeOnce(): Promise<void> {
    if (!this.initialDone && !this.targetRead) {
      this.target = (await this.o.jsm.streams.info(this.o.stream)).state.last_seq
      this.targetRead = true
    }
    if (this.stopped) return
    const from = this.lastSeq + 1
    // Until a message was delivered a time start stands; after one, the next sequence does.
    const byTime = from === 1 && this.o.fromTime !== undefined
    const consumer = await this.o.js.consumers.get(this.o.stream, {
      filter_subjects: this.o.filter,
      deliver_policy: byTime ? DeliverPolicy.StartTime : from > 1 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
      ...(byTime ? { opt_start_time: new Date(this.o.fromTime!).toISOString() } : {}),
      ...(from > 1 ? { opt_start_seq: from } : {}),
    })
    const info = await consumer.info(true)
    if (!this.initialDone && info.num_pending === 0) {
      this.markInitialDone()
      if (this.o.once) return
    }
    const iter = await consumer.consume({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS })
    this.current = iter
    if (this.stopped) iter.stop()
    void this.abandonWhenSilent(iter)
    let slice = performance.now()
    try {
      for await (const m of iter) {
        if (performance.now() - slice > MAX_SLICE_MS) {
          await new Promise((r) => setImmediate(r))
          slice = performance.now()
        }
        if (this.stopped) break
        const seq = m.info.streamSequence
        if (this.o.once && this.initialDone) break
        this.lastSeq = seq
        if (!this.initialDone && seq > this.target) this.markInitialDone()
        if (this.o.once && this.initialDone && seq > this.target) break
        try {
          this.o.onMessage(m)
        } catch (err) {
          this.o.log.error({ err, stream: this.o.stream, seq }, 'stream listener threw')
        }
        if (!this.initialDone && (seq >= this.target || m.info.pending === 0)) {
          this.markInitialDone()
          if (this.o.once) break
        }
      }
    } finally {
      iter.stop()
      consumer.delete().catch(() => undefined)
    }
  }

  /** A consumer whose server died while our connection stayed up is abandoned after missed heartbeats. */
  private async abandonWhenSilent(iter: { stop(): void; status(): AsyncIterable<{ type: string }> }): Promise<void> {
    try {
      for await (const s of iter.status()) {
        if (s.type === 'heartbeats_missed') {
          this.o.log.warn({ stream: this.o.stream, last: this.lastSeq }, 'stream consumer silent; recreating it')
          iter.stop()
          return
        }
      }
    } catch {
      /* iterator ended */
    }
  }

  private markInitialDone(): void {
    if (this.initialDone) return
    this.initialDone = true
    try {
      this.o.onInitialDone()
    } catch (err) {
      this.o.log.error({ err }, 'initial-load listener threw')
    }
  }
}

/**
 * Reads a stream once (a follower with `once`): every message through the filter from the start
 * given, up to the stream's end when the read began; resolves with that end (the scan's
 * `initialTarget`). Rejects when the follow fails for good, or with `aborted()` when `signal` aborts
 * (the scan is stopped then).
 */
export function scanStream(
  o: Omit<FollowOptions, 'once' | 'onInitialDone' | 'onError'>,
  signal: AbortSignal | undefined,
  aborted: () => Error,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const scan = new StreamFollower({ ...o, once: true, onInitialDone: () => undefined, onError: reject })
    const abort = () => {
      void scan.stop()
      reject(aborted())
    }
    signal?.addEventListener('abort', abort, { once: true })
    void scan.finished().then(() => {
      signal?.removeEventListener('abort', abort)
      resolve(scan.initialTarget)
    }, reject)
  })
}
