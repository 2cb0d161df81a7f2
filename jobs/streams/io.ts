/**
 * The job store's requests to JetStream, below the job semantics: a publish with an expected
 * last-subject sequence (compare-and-set; 0: create-if-absent) or a message id (deduplicated
 * retries), reads from the stream leader (last message of a subject, next message matching a
 * filter from a sequence), deletes by sequence. Each bounds its requests in flight and retries
 * transient failures (no ack in time, JetStream without a leader) until its deadline or until its
 * AbortSignal aborts; a create retried after an uncertain failure recognises its own write.
 */
import type { JetStreamManager, PubAck } from '@nats-io/jetstream'
import type { ReplyInbox } from '../../runner/transport/reply-inbox.js'
import { BosunError, errors } from '../../runner/errors.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import { bytesEqual, isClosedConnection, isMessageGone, isTransient, isWrongLastSequence } from '../store-codec.js'
import { Limiter } from '../store-limiter.js'
import { jsDeleteMessage, jsGetMessage, jsPublish } from './js-inbox.js'

/** One stored message. */
export interface StoredMessage {
  seq: number
  subject: string
  data: Uint8Array
  /** When the store took it (epoch ms), when known. */
  time?: number
}

export interface IoLimits {
  /** Timeout of one JetStream request. */
  requestTimeoutMs: number
  /** Budget of one operation including retries of transient failures. */
  operationTimeoutMs: number
  /** Writes in flight at once. */
  maxInFlight: number
  /** Reads and deletes in flight at once. */
  maxReadsInFlight: number
}

const backoffMs = (attempt: number) => retryDelay(attempt, 1000)

export interface PublishOptions {
  /** Compare-and-set: the subject's last sequence must be this (0: the subject has no message). */
  expectLastSubjectSequence?: number
  /** Deduplication id: a retry with the same id within the stream's window is stored once. */
  msgId?: string
  signal?: AbortSignal
  /**
   * Announce the write: its first attempt is acknowledged on a subject others may hear (the
   * `announced` inbox), told here just before it is sent. Retries are acknowledged privately.
   */
  announce?: (ackSubject: string) => void
}

export class StreamIO {
  private readonly writes: Limiter
  private readonly reads: Limiter

  constructor(
    /** Publishes, reads and deletes go through it (js-inbox.ts); stream info through `jsm`. */
    private readonly inbox: ReplyInbox,
    private readonly jsm: JetStreamManager,
    readonly limits: IoLimits,
    /** Replies to announced writes (runner/transport/subjects.ts finalAcksPrefix); default: `inbox`. */
    private readonly announced: ReplyInbox = inbox,
  ) {
    this.writes = new Limiter(limits.maxInFlight)
    this.reads = new Limiter(limits.maxReadsInFlight)
  }

  deadline(): number {
    return Date.now() + this.limits.operationTimeoutMs
  }

  /**
   * One publish, retried while transient. A compare-and-set whose first attempt may have landed
   * (no ack in time) is recognised on retry when the subject holds exactly our bytes.
   */
  async publish(stream: string, subject: string, data: Uint8Array, opts: PublishOptions = {}): Promise<PubAck> {
    const deadline = this.deadline()
    for (let attempt = 0, uncertain = false; ; attempt++) {
      this.checkAbort(opts.signal, `publish ${subject}`)
      try {
        const announce = attempt === 0 ? opts.announce : undefined
        return await this.writes.run(() =>
          jsPublish(announce ? this.announced : this.inbox, subject, data, {
            timeoutMs: this.limits.requestTimeoutMs,
            ...(announce ? { onReplySubject: announce } : {}),
            ...(opts.msgId !== undefined ? { msgId: opts.msgId } : {}),
            ...(opts.expectLastSubjectSequence !== undefined
              ? { expectLastSubjectSequence: opts.expectLastSubjectSequence }
              : {}),
          }),
        )
      } catch (err) {
        if (isWrongLastSequence(err) && uncertain) {
          const cur = await this.last(stream, subject, opts.signal)
          if (cur !== null && bytesEqual(cur.data, data)) return { stream, seq: cur.seq, duplicate: true, domain: '' }
        }
        if (!isTransient(err) || Date.now() > deadline) throw this.error(`publish ${subject}`, err)
        uncertain = true
        await sleep(backoffMs(attempt))
      }
    }
  }

  /** The last message of `subject` (from the stream leader), or null. */
  last(stream: string, subject: string, signal?: AbortSignal): Promise<StoredMessage | null> {
    return this.read(stream, { last_by_subj: subject }, signal)
  }

  /** The first message at or after `seq` whose subject matches `filter` (wildcards allowed), or null. */
  next(stream: string, filter: string, seq: number, signal?: AbortSignal): Promise<StoredMessage | null> {
    return this.read(stream, { next_by_subj: filter, seq: Math.max(1, seq) }, signal)
  }

  /** The message at sequence `seq`, whatever its subject, or null (deleted, expired, never written). */
  at(stream: string, seq: number, signal?: AbortSignal): Promise<StoredMessage | null> {
    return this.read(stream, { seq }, signal)
  }

  /** First and last sequence of a stream. */
  async bounds(stream: string): Promise<{ first: number; last: number }> {
    const deadline = this.deadline()
    for (let attempt = 0; ; attempt++) {
      try {
        const info = await this.reads.run(() => this.jsm.streams.info(stream))
        return { first: info.state.first_seq, last: info.state.last_seq }
      } catch (err) {
        if (!isTransient(err) || Date.now() > deadline) throw this.error(`info ${stream}`, err)
        await sleep(backoffMs(attempt))
      }
    }
  }

  /** Delete the message at `seq` (no tombstone). Idempotent. */
  async delete(stream: string, seq: number, signal?: AbortSignal): Promise<void> {
    const deadline = this.deadline()
    for (let attempt = 0; ; attempt++) {
      this.checkAbort(signal, `delete ${stream}#${seq}`)
      try {
        await this.reads.run(() => jsDeleteMessage(this.inbox, stream, seq, this.limits.requestTimeoutMs))
        return
      } catch (err) {
        if (isMessageGone(err)) return
        if (!isTransient(err) || Date.now() > deadline) throw this.error(`delete ${stream}#${seq}`, err)
        await sleep(backoffMs(attempt))
      }
    }
  }

  /** A coded error for a failed store request (CLOSED when the connection is gone, else STORE). */
  error(what: string, err: unknown): BosunError {
    if (err instanceof BosunError) return err
    if (isClosedConnection(err)) return errors.CLOSED(`${what}: NATS connection is closed`, { cause: err })
    return errors.STORE(`${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }

  private async read(
    stream: string,
    query: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<StoredMessage | null> {
    const deadline = this.deadline()
    for (let attempt = 0; ; attempt++) {
      this.checkAbort(signal, `read ${stream}`)
      try {
        // STREAM.MSG.GET is answered by the stream leader: a write is readable as soon as it is acked.
        return await this.reads.run(() => jsGetMessage(this.inbox, stream, query, this.limits.requestTimeoutMs))
      } catch (err) {
        if (!isTransient(err) || Date.now() > deadline) throw this.error(`read ${stream}`, err)
        await sleep(backoffMs(attempt))
      }
    }
  }

  private checkAbort(signal: AbortSignal | undefined, what: string): void {
    if (signal?.aborted) throw errors.NOT_LEADER(`${what}: abandoned (${String(signal.reason ?? 'aborted')})`)
  }
}
