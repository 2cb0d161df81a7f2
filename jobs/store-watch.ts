/**
 * Reading the whole job bucket in order: a watcher (every current record, then an "initial load
 * done" signal, then every change) and a one-shot scan. Both run on JetStream ordered consumers
 * (LastPerSubject over `$KV.<bucket>.jobs.>`), which the client recreates from the last delivered
 * stream sequence after a reconnect or a lost consumer; when a consumer gives up entirely the
 * watcher starts a new one from that sequence, so a NATS restart loses no update.
 *
 * When is the initial load done? Before creating its consumer the watcher reads the stream's last
 * sequence S. LastPerSubject delivers in stream order, so every record that existed at that point
 * arrives before any message with a sequence above S. The load is done when the consumer had
 * nothing pending at creation, or a delivered message has sequence ≥ S, or nothing is pending
 * after it — whichever comes first.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager, type JsMsg } from '@nats-io/jetstream'
import { errors } from '../runner/errors.js'
import type { Logger } from '../runner/logger.js'
import { decodeJob, isClosedConnection, JOB_KEY_PREFIX } from './store-codec.js'
import type { Job } from './model.js'

/** One change in the bucket as a watcher sees it. */
export interface WatchEntry {
  id: string
  /** null when the record was deleted or purged with a marker. */
  job: Job | null
  /** The KV revision (stream sequence) of this change. */
  revision: number
  deleted: boolean
}

export interface BucketRef {
  js: JetStreamClient
  jsm: JetStreamManager
  /** Stream name (`KV_<bucket>`). */
  stream: string
  /** Subject prefix of job records (`$KV.<bucket>.jobs.`). */
  jobSubjectPrefix: string
  log: Logger
}

/** Messages per pull; big batches make the initial load of a large bucket fast. */
const PULL_BATCH = 1000
/** Pull expiry; idle heartbeats are half of it, two missed heartbeats recreate the consumer (~4 s). */
const PULL_EXPIRES_MS = 4000

/** Decode one stream message to a WatchEntry; null for garbage (logged). */
export function toWatchEntry(ref: BucketRef, m: JsMsg): WatchEntry | null {
  const id = m.subject.startsWith(ref.jobSubjectPrefix) ? m.subject.slice(ref.jobSubjectPrefix.length) : ''
  const revision = m.info.streamSequence
  const op = m.headers?.get('KV-Operation')
  if (op === 'DEL' || op === 'PURGE') return { id, job: null, revision, deleted: true }
  const decoded = decodeJob(m.data, id)
  if (decoded.job === null) {
    ref.log.warn(
      { key: JOB_KEY_PREFIX + id, revision, problem: decoded.problem, bytes: m.data.length },
      'skipping garbage in the job bucket',
    )
    return null
  }
  return { id, job: decoded.job, revision, deleted: false }
}

async function lastSequence(ref: BucketRef): Promise<number> {
  const info = await ref.jsm.streams.info(ref.stream)
  return info.state.last_seq
}

async function orderedConsumer(ref: BucketRef, fromSeq: number) {
  const filter = ref.jobSubjectPrefix + '>'
  return fromSeq > 0
    ? ref.js.consumers.get(ref.stream, {
        filter_subjects: filter,
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: fromSeq,
      })
    : ref.js.consumers.get(ref.stream, { filter_subjects: filter, deliver_policy: DeliverPolicy.LastPerSubject })
}

export type WatchErrorListener = (err: unknown) => void

/** A running watch over every job record. Create with `new JobWatcher(…)`, end with `stop()`. */
export class JobWatcher {
  private stopped = false
  private initialDone = false
  private lastSeq = 0
  private target = 0
  private current: { stop(): void } | undefined
  private statusIter: (AsyncIterable<{ type: string }> & { stop(): void }) | undefined
  private readonly done: Promise<void>

  constructor(
    private readonly ref: BucketRef,
    private readonly onEntry: (entry: WatchEntry) => void,
    private readonly onInitialDone: () => void,
    private readonly onError?: WatchErrorListener,
  ) {
    this.done = this.run()
    void this.restartOnReconnect()
  }

  /** True once every record that existed at the start has been delivered. */
  get initialLoadDone(): boolean {
    return this.initialDone
  }

  /** Stream sequence of the last delivered change (0 before the first). */
  get lastRevision(): number {
    return this.lastSeq
  }

  /** Idempotent; resolves when the consumer is stopped. */
  async stop(): Promise<void> {
    this.stopped = true
    this.current?.stop()
    this.statusIter?.stop()
    await this.done
  }

  /**
   * After a reconnect the server may have lost our (in-memory) consumer, and requests sent around
   * the reconnect can go unanswered: rather than wait for missed heartbeats, start a new consumer
   * from the last delivered sequence at once.
   */
  private async restartOnReconnect(): Promise<void> {
    const nc = this.ref.js as unknown as { nc: { status(): AsyncIterable<{ type: string }> & { stop(): void } } }
    this.statusIter = nc.nc.status()
    try {
      for await (const s of this.statusIter) {
        if (this.stopped) return
        if (s.type === 'reconnect') {
          this.ref.log.info({ lastRevision: this.lastSeq }, 'NATS reconnected; resuming the job watch')
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
      } catch (err) {
        if (isClosedConnection(err)) {
          this.fail(err)
          return
        }
        failures++
        this.ref.log.warn({ err, lastRevision: this.lastSeq, failures }, 'job watch interrupted; resuming')
      }
      if (this.stopped) return
      if ((this.ref.js as unknown as { nc: { isClosed(): boolean } }).nc.isClosed()) {
        this.statusIter?.stop()
        this.fail(new Error('NATS connection closed'))
        return
      }
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** failures, 2000)))
    }
  }

  private fail(err: unknown): void {
    this.ref.log.error({ err }, 'job watch stopped')
    try {
      this.onError?.(err)
    } catch (e) {
      this.ref.log.error({ err: e }, 'watch error listener threw')
    }
  }

  private async consumeOnce(): Promise<void> {
    if (!this.initialDone && this.lastSeq === 0) this.target = await lastSequence(this.ref)
    if (this.stopped) return
    const consumer = await orderedConsumer(this.ref, this.lastSeq > 0 ? this.lastSeq + 1 : 0)
    const info = await consumer.info(true)
    if (!this.initialDone && info.num_pending === 0) this.markInitialDone()
    const iter = await consumer.consume({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS })
    this.current = iter
    if (this.stopped) iter.stop()
    void this.abandonWhenSilent(iter)
    try {
      for await (const m of iter) {
        if (this.stopped) break
        const seq = m.info.streamSequence
        this.lastSeq = seq
        if (!this.initialDone && seq > this.target) this.markInitialDone()
        const entry = toWatchEntry(this.ref, m)
        if (entry !== null) {
          try {
            this.onEntry(entry)
          } catch (err) {
            this.ref.log.error({ err, id: entry.id }, 'job watch listener threw')
          }
        }
        if (!this.initialDone && (seq >= this.target || m.info.pending === 0)) this.markInitialDone()
      }
    } finally {
      iter.stop()
      consumer.delete().catch(() => undefined)
    }
  }

  /**
   * In a cluster the server holding our (single-replica) consumer can die while our connection
   * stays up; the consumer then still "exists" for the meta layer and the client would keep pulling
   * from it forever. Two missed idle heartbeats (~4 s) end this consumer; run() starts a new one.
   */
  private async abandonWhenSilent(iter: { stop(): void; status(): AsyncIterable<{ type: string }> }): Promise<void> {
    try {
      for await (const s of iter.status()) {
        if (s.type === 'heartbeats_missed') {
          this.ref.log.warn({ lastRevision: this.lastSeq }, 'job watch consumer silent; recreating it')
          iter.stop()
          return
        }
      }
    } catch {
      /* iterator ended */
    }
  }

  private markInitialDone(): void {
    this.initialDone = true
    try {
      this.onInitialDone()
    } catch (err) {
      this.ref.log.error({ err }, 'initial-load listener threw')
    }
  }
}

/**
 * Every job record as it is now (deleted and garbage entries skipped), in key-revision order.
 * Ends once the records that existed at the start have been read.
 */
export async function* scanJobs(ref: BucketRef): AsyncGenerator<{ job: Job; revision: number }> {
  const target = await lastSequence(ref)
  const consumer = await orderedConsumer(ref, 0)
  const info = await consumer.info(true)
  if (info.num_pending === 0) return
  const iter = await consumer.consume({ max_messages: PULL_BATCH, expires: PULL_EXPIRES_MS })
  try {
    for await (const m of iter) {
      const seq = m.info.streamSequence
      if (seq > target) return
      const entry = toWatchEntry(ref, m)
      if (entry !== null && entry.job !== null) yield { job: entry.job, revision: entry.revision }
      if (seq >= target || m.info.pending === 0) return
    }
  } finally {
    iter.stop()
    consumer.delete().catch(() => undefined)
  }
}

/** What the async-iterable watch yields: entries, and once a marker that the initial load is done. */
export type JobWatchEvent = ({ type: 'entry' } & WatchEntry) | { type: 'initial-load-done' }

export interface JobWatchStream extends AsyncIterable<JobWatchEvent> {
  stop(): Promise<void>
}

type StartWatch = (
  onEntry: (entry: WatchEntry) => void,
  onInitialDone: () => void,
  onError: WatchErrorListener,
) => () => void

/**
 * A callback watch as an async iterable (single consumer). Events are buffered without bound
 * while the consumer is slow; breaking out of the loop stops the watch; a watch that ends for good
 * makes the loop throw BOSUN_ERR_STORE.
 */
export function watchAsIterable(start: StartWatch): JobWatchStream {
  const queue: JobWatchEvent[] = []
  let wake: (() => void) | undefined
  let ended = false
  let failure: unknown
  const notify = () => {
    wake?.()
    wake = undefined
  }
  const stopWatch = start(
    (entry) => {
      queue.push({ type: 'entry', ...entry })
      notify()
    },
    () => {
      queue.push({ type: 'initial-load-done' })
      notify()
    },
    (err) => {
      failure = err
      ended = true
      notify()
    },
  )
  const stop = async () => {
    ended = true
    stopWatch()
    notify()
  }
  return {
    stop,
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          while (queue.length > 0) yield queue.shift()!
          if (ended) {
            if (failure !== undefined) throw errors.STORE('job watch ended', { cause: failure })
            return
          }
          await new Promise<void>((r) => (wake = r))
        }
      } finally {
        await stop()
      }
    },
  }
}
