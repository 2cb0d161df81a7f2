/**
 * Following a stream in order: every message through a subject filter from the start, then an
 * "initial load done" signal, then every later message — across NATS restarts and reconnects. Each
 * stretch runs on one ephemeral pull consumer (jobs/streams/consumer-pull.ts); when it ends (a
 * reconnect, a gap, a consumer gone silent) a new one starts after the last delivered sequence, so
 * nothing is skipped and nothing delivered twice. With `once`, it stops after the initial load (a scan).
 *
 * When is the initial load done? Before creating its consumer the follower reads the stream's last
 * sequence S; the load is done when nothing was pending at creation, or a delivered message has
 * sequence ≥ S, or nothing is pending after it — whichever comes first.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from '../../runner/logger.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import { isClosedConnection } from '../store-codec.js'
import { openPull, type ConsumerPull, type PulledMessage } from './consumer-pull.js'

export type { PulledMessage } from './consumer-pull.js'

/**
 * Longest stretch of message handling without giving the event loop a turn: a pull delivers up to
 * a thousand messages at once, and a boss reading a large backlog must still answer its ZooKeeper
 * liveness probe (a stall of half the session timeout deposes it).
 */
const MAX_SLICE_MS = 20

export interface FollowOptions {
  js: JetStreamClient
  jsm: JetStreamManager
  stream: string
  filter: string
  log: Logger
  onMessage(m: PulledMessage): void
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
  private current: ConsumerPull | undefined
  private statusIter: (AsyncIterable<{ type: string }> & { stop(): void }) | undefined
  private readonly done: Promise<void>

  constructor(private readonly o: FollowOptions) {
    this.lastSeq = Math.max(0, (o.fromSeq ?? 1) - 1)
    this.done = this.run()
    if (!o.once) void this.restartOnReconnect()
  }

  /** The connection under the JetStream client (nats.js keeps it as `nc`). */
  private get nc(): NatsConnection {
    return (this.o.js as unknown as { nc: NatsConnection }).nc
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
    this.statusIter = this.nc.status() as AsyncIterable<{ type: string }> & { stop(): void }
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
      if (this.nc.isClosed()) {
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
    const pull = await openPull(
      this.nc,
      this.o.jsm,
      this.o.stream,
      {
        filter_subject: this.o.filter,
        deliver_policy: byTime ? DeliverPolicy.StartTime : from > 1 ? DeliverPolicy.StartSequence : DeliverPolicy.All,
        ...(byTime ? { opt_start_time: new Date(this.o.fromTime!).toISOString() } : {}),
        ...(from > 1 ? { opt_start_seq: from } : {}),
      },
      this.o.log,
    )
    this.current = pull
    if (this.stopped) pull.stop()
    if (!this.initialDone && pull.pendingAtStart === 0) {
      this.markInitialDone()
      if (this.o.once) return pull.stop()
    }
    let slice = performance.now()
    try {
      for await (const m of pull) {
        if (performance.now() - slice > MAX_SLICE_MS) {
          await new Promise((r) => setImmediate(r))
          slice = performance.now()
        }
        if (this.stopped) break
        const seq = m.seq
        if (this.o.once && this.initialDone) break
        this.lastSeq = seq
        if (!this.initialDone && seq > this.target) this.markInitialDone()
        if (this.o.once && this.initialDone && seq > this.target) break
        try {
          this.o.onMessage(m)
        } catch (err) {
          this.o.log.error({ err, stream: this.o.stream, seq }, 'stream listener threw')
        }
        if (!this.initialDone && (seq >= this.target || m.pending === 0)) {
          this.markInitialDone()
          if (this.o.once) break
        }
      }
    } finally {
      pull.stop()
    }
    const why = pull.ended
    if (why === 'failed') throw new Error(`pulling from ${this.o.stream} failed`)
    if (why === 'silent') {
      this.o.log.warn({ stream: this.o.stream, last: this.lastSeq }, 'stream consumer silent; recreating it')
    } else if (why === 'gap' || why === 'deleted') {
      this.o.log.info({ stream: this.o.stream, last: this.lastSeq, why }, 'stream consumer restarting')
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
