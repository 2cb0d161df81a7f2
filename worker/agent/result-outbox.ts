/**
 * Finished attempts wait here until the current boss acknowledges them (it acks only after a
 * durable write). Results are sent in batches, one request in flight at a time, re-sent after
 * a failure with backoff and at once when a new boss is elected — so nothing a worker finished
 * is lost across a boss change (README "Guarantees, and how they are kept", 2).
 */
import { errors, type Logger } from '../../runner/index.js'
import { MSG, parseResultsReply, type AttemptResult, type ResultsBody } from '../../jobs/protocol.js'

export interface OutboxDeps {
  /** Address of the current boss, or undefined when none is elected. */
  bossAddress(): Promise<string | undefined>
  request(address: string, type: string, body: unknown, timeoutMs: number): Promise<unknown>
  logger: Logger
}

const RETRY_MIN_MS = 50
const RETRY_MAX_MS = 2000
const REQUEST_TIMEOUT_MS = 5000
const MAX_BATCH = 500

export class ResultOutbox {
  private readonly pending = new Map<string, AttemptResult>()
  private inFlight = false
  private scheduled = false
  private retryTimer: NodeJS.Timeout | undefined
  private retryDelay = RETRY_MIN_MS
  private closed = false
  private readonly idleWaiters: (() => void)[] = []
  /** Shrinks when a batch exceeds the NATS max_payload, grows back after successes. */
  private maxBatch = MAX_BATCH

  constructor(private readonly deps: OutboxDeps) {}

  get size(): number {
    return this.pending.size
  }

  has(jobId: string): boolean {
    return this.pending.has(jobId)
  }

  /** Unacknowledged results (reported to a new boss in the inventory). */
  list(): AttemptResult[] {
    return [...this.pending.values()]
  }

  add(result: AttemptResult): void {
    this.pending.set(result.jobId, result)
    this.schedule()
  }

  /** A new boss dispatched a job whose result we hold under another attempt number: report it under the new one. */
  renumber(jobId: string, attempt: number, epoch: number): void {
    const r = this.pending.get(jobId)
    if (r && (r.attempt !== attempt || r.epoch < epoch))
      this.pending.set(jobId, { ...r, attempt: Math.max(r.attempt, attempt), epoch: Math.max(r.epoch, epoch) })
  }

  /** Forget results a boss has recorded (from a results reply or an inventory round). */
  ack(jobIds: Iterable<string>): void {
    for (const id of jobIds) this.pending.delete(id)
    if (this.pending.size === 0) this.notifyIdle()
  }

  /** Try again now (e.g. a new boss was elected). */
  kick(): void {
    if (this.retryTimer) {
      clearTimeout(this.retryTimer)
      this.retryTimer = undefined
    }
    this.retryDelay = RETRY_MIN_MS
    this.schedule()
  }

  /** Resolves when every result is acknowledged, or after timeoutMs (false). */
  async drained(timeoutMs: number): Promise<boolean> {
    if (this.pending.size === 0) return true
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(this.pending.size === 0), timeoutMs)
      this.idleWaiters.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  close(): void {
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight || this.retryTimer || this.closed) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      void this.flush()
    })
  }

  private async flush(): Promise<void> {
    if (this.inFlight || this.closed || this.pending.size === 0) return
    this.inFlight = true
    const batch = [...this.pending.values()].slice(0, this.maxBatch)
    let ok = false
    try {
      const address = await this.deps.bossAddress()
      if (address === undefined) throw new Error('no boss elected')
      const { acked } = parseResultsReply(
        await this.deps.request(address, MSG.results, { results: batch } satisfies ResultsBody, REQUEST_TIMEOUT_MS),
      )
      // Only forget what was acked *and* is still the same attempt we sent.
      for (const id of acked) {
        const sent = batch.find((r) => r.jobId === id)
        const now = this.pending.get(id)
        if (sent && now === sent) this.pending.delete(id)
      }
      ok = true
      this.retryDelay = RETRY_MIN_MS
      this.maxBatch = Math.min(MAX_BATCH, this.maxBatch * 2)
    } catch (err) {
      if ((err as { code?: unknown }).code === errors.BODY_TOO_LARGE.code) {
        ok = true // not a delivery failure: send smaller batches at once
        if (batch.length > 1) this.maxBatch = Math.max(1, Math.floor(batch.length / 2))
        else this.replaceWithError(batch[0]!)
      } else this.deps.logger.debug({ err, pending: this.pending.size }, 'result delivery failed; will retry')
    } finally {
      this.inFlight = false
    }
    if (this.pending.size === 0) {
      this.notifyIdle()
      return
    }
    if (ok) {
      this.schedule()
    } else if (!this.closed) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        this.schedule()
      }, this.retryDelay)
      this.retryDelay = Math.min(RETRY_MAX_MS, this.retryDelay * 2)
    }
  }

  /** A single result too large for one message (cannot happen below MAX_RESULT_BYTES): report it failed. */
  private replaceWithError(r: AttemptResult): void {
    const e = errors.RESULT_TOO_LARGE('the result is too large to send to the boss')
    this.pending.set(r.jobId, { ...r, outcome: { ok: false, error: { message: e.message, code: e.code } } })
  }

  private notifyIdle(): void {
    for (const w of this.idleWaiters.splice(0)) w()
  }
}
