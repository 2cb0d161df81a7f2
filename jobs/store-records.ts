/**
 * Durable record operations on the bucket's stream, below the job semantics: compare-and-set
 * publishes, leader reads, create-if-absent, delete by sequence. Each bounds the requests it has in
 * flight and retries transient failures (no ack in time, JetStream without a leader) until the
 * operation's deadline; a create retried after an uncertain failure recognises its own earlier
 * write by comparing bytes.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import type { KV } from '@nats-io/kv'
import { BosunError, errors } from '../runner/errors.js'
import type { Logger } from '../runner/logger.js'
import { bytesEqual, isClosedConnection, isMessageGone, isTransient, isWrongLastSequence } from './store-codec.js'
import { Limiter } from './store-limiter.js'

/** One KV entry as stored: its revision (stream sequence), operation and raw value. */
export interface RawEntry {
  revision: number
  op: 'PUT' | 'DEL' | 'PURGE'
  data: Uint8Array
}

export interface RecordLimits {
  requestTimeoutMs: number
  operationTimeoutMs: number
  maxCasAttempts: number
  maxInFlight: number
  maxReadsInFlight: number
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
export const backoffMs = (attempt: number) => Math.min(50 * 2 ** attempt, 1000)

export class Records {
  private readonly writes: Limiter
  private readonly reads: Limiter

  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    /** Stream name (`KV_<bucket>`). */
    private readonly stream: string,
    /** Subject prefix of keys (`$KV.<bucket>.`). */
    private readonly prefix: string,
    private readonly log: Logger,
    readonly limits: RecordLimits,
  ) {
    this.writes = new Limiter(limits.maxInFlight)
    this.reads = new Limiter(limits.maxReadsInFlight)
  }

  /** The deadline of an operation starting now. */
  deadline(): number {
    return Date.now() + this.limits.operationTimeoutMs
  }

  /** Write `data` under `key` if the key's last revision is `expectRevision` (0: absent). One attempt. */
  async publish(key: string, data: Uint8Array, expectRevision: number): Promise<number> {
    const ack = await this.writes.run(() =>
      this.js.publish(this.prefix + key, data, {
        expect: { lastSubjectSequence: expectRevision },
        timeout: this.limits.requestTimeoutMs,
      }),
    )
    return ack.seq
  }

  /** The latest entry of `key` (from the stream leader), or null. Retries stop when `signal` aborts. */
  async read(key: string, deadline: number, signal?: AbortSignal): Promise<RawEntry | null> {
    for (let attempt = 0; ; attempt++) {
      if (signal?.aborted) throw errors.NOT_LEADER(`read ${key}: abandoned`)
      try {
        const e = await this.reads.run(() => this.kv.get(key))
        return e === null ? null : { revision: e.revision, op: e.operation, data: e.value }
      } catch (err) {
        if (!isTransient(err) || Date.now() > deadline) throw this.error(`read ${key}`, err)
        await sleep(backoffMs(attempt))
      }
    }
  }

  /**
   * Write `data` under `key` only if the key is absent, deleted, or holds garbage (`usable` false:
   * replaced, with a warning). Returns the stored entry when a usable one exists.
   */
  async createIfAbsent(
    key: string,
    data: Uint8Array,
    usable: (data: Uint8Array) => boolean,
  ): Promise<{ created: true; revision: number } | { created: false; existing: RawEntry }> {
    const deadline = this.deadline()
    let expect = 0
    let uncertain = false
    for (let conflicts = 0, transient = 0; ;) {
      try {
        return { created: true, revision: await this.publish(key, data, expect) }
      } catch (err) {
        if (isWrongLastSequence(err)) {
          if (++conflicts > this.limits.maxCasAttempts)
            throw errors.STORE(`create ${key}: too many conflicts`, { cause: err })
        } else if (isTransient(err) && Date.now() < deadline) {
          uncertain = true
          await sleep(backoffMs(transient++))
        } else {
          throw this.error(`create ${key}`, err)
        }
      }
      const cur = await this.read(key, deadline)
      if (cur === null) {
        expect = 0
      } else if (cur.op !== 'PUT') {
        expect = cur.revision
      } else if (uncertain && bytesEqual(cur.data, data)) {
        return { created: true, revision: cur.revision }
      } else if (!usable(cur.data)) {
        this.log.warn({ key, revision: cur.revision }, 'replacing garbage in the job bucket')
        expect = cur.revision
      } else {
        return { created: false, existing: cur }
      }
    }
  }

  /** Delete the message holding `key` at `revision`; if it is gone, delete whatever newer one replaced it. */
  async deleteAt(key: string, revision: number, deadline: number): Promise<void> {
    for (let attempt = 0, rev = revision; ; attempt++) {
      try {
        await this.reads.run(() => this.jsm.streams.deleteMessage(this.stream, rev, false))
        return
      } catch (err) {
        if (isMessageGone(err)) {
          const cur = await this.read(key, deadline)
          if (cur === null || cur.revision === rev || attempt >= this.limits.maxCasAttempts) return
          rev = cur.revision
          continue
        }
        if (!isTransient(err) || Date.now() > deadline) throw this.error(`delete ${key}`, err)
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
}
