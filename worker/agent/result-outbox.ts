/**
 * Finished attempts wait here until the current boss acknowledges them (it acks only after a
 * durable write). Results are sent as they finish — a few requests in flight at once, each result in
 * at most one of them, batched once those are busy — so a result does not wait for the durable
 * writes of the ones before it (the boss frees the worker's slot when the result arrives). Re-sent
 * after a failure with backoff and at once when a new boss is elected — so nothing a worker
 * finished is lost across a boss change (README "Guarantees, and how they are kept", 2).
 */
import { errors, type Logger } from '../../runner/index.js'
import { retryDelay } from '../../runner/retry.js'
import { MSG, parseResultsReply, type AttemptResult, type ResultsBody } from '../../jobs/protocol.js'

export interface OutboxDeps {
  /** Address of the current boss, or undefined when none is elected. */
  bossAddress(): Promise<string | undefined>
  request(address: string, type: string, body: unknown, timeoutMs: number): Promise<unknown>
  logger: Logger
  /**
   * The newest boss epoch this worker has seen: an acknowledgement from an older term is not
   * believed (a boss paused past its session answers results sent to it before it learns it was
   * deposed, after its successor took the jobs over). Absent: every acknowledgement is believed.
   */
  newestEpoch?: () => number
}

const REQUEST_TIMEOUT_MS = 5000
const MAX_BATCH = 500
/** Result requests in flight at once. */
const MAX_IN_FLIGHT = 4

export class ResultOutbox {
  private readonly pending = new Map<string, AttemptResult>()
  private inFlight = 0
  /** Results in a request in flight (never sent twice at once). */
  private readonly sending = new Set<AttemptResult>()
  private scheduled = false
  private retryTimer: NodeJS.Timeout | undefined
  /** Consecutive failed deliveries (runner/retry.ts backoff). */
  private failures = 0
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

  /** The run of the result held for `jobId` (0: none, or run 0). */
  runOf(jobId: string): number {
    return this.pending.get(jobId)?.run ?? 0
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
    this.failures = 0
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
    if (this.scheduled || this.inFlight >= MAX_IN_FLIGHT || this.retryTimer || this.closed) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      void this.flush()
    })
  }

  private async flush(): Promise<void> {
    if (this.inFlight >= MAX_IN_FLIGHT || this.closed) return
    const inRequest = new Set([...this.sending].map((r) => r.jobId))
    const batch: AttemptResult[] = []
    for (const r of this.pending.values()) {
      if (batch.length >= this.maxBatch) break
      if (!inRequest.has(r.jobId)) batch.push(r)
    }
    if (batch.length === 0) return
    this.inFlight++
    for (const r of batch) this.sending.add(r)
    let ok = false
    try {
      const address = await this.deps.bossAddress()
      if (address === undefined) throw new Error('no boss elected')
      const { acked, epoch } = parseResultsReply(
        await this.deps.request(address, MSG.results, { results: batch } satisfies ResultsBody, REQUEST_TIMEOUT_MS),
      )
      const newest = this.deps.newestEpoch?.() ?? 0
      if (epoch !== undefined && epoch < newest)
        throw errors.STALE_EPOCH(`results acknowledged by epoch ${epoch}, older than epoch ${newest}: sent again`)
      // Only forget what was acked *and* is still the same attempt we sent.
      const sentById = new Map(batch.map((r) => [r.jobId, r]))
      for (const id of acked) {
        const sent = sentById.get(id)
        if (sent && this.pending.get(id) === sent) this.pending.delete(id)
      }
      ok = true
      this.failures = 0
      this.maxBatch = Math.min(MAX_BATCH, this.maxBatch * 2)
    } catch (err) {
      if ((err as { code?: unknown }).code === errors.BODY_TOO_LARGE.code) {
        ok = true // not a delivery failure: send smaller batches at once
        if (batch.length > 1) this.maxBatch = Math.max(1, Math.floor(batch.length / 2))
        else this.replaceWithError(batch[0]!)
      } else if ((err as { code?: unknown }).code === errors.STALE_EPOCH.code)
        this.deps.logger.warn(
          { err, pending: this.pending.size },
          'results acknowledged by a deposed boss; sending again',
        )
      else this.deps.logger.debug({ err, pending: this.pending.size }, 'result delivery failed; will retry')
    } finally {
      this.inFlight--
      for (const r of batch) this.sending.delete(r)
    }
    if (this.pending.size === 0) {
      this.notifyIdle()
      return
    }
    if (ok) {
      this.schedule()
    } else if (!this.closed && !this.retryTimer) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined
        this.schedule()
      }, retryDelay(this.failures++))
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
