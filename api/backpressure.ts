/**
 * Backpressure: the acting boss reports how many jobs are queued every few hundred ms; past the
 * configured limit the API refuses new jobs with 429 + Retry-After instead of letting the queue
 * grow without bound. Jobs accepted since the last report count too, so a burst cannot overshoot
 * the limit by more than one report interval's worth of other APIs' submissions.
 */
import type { BossStatusReply } from '../jobs/protocol.js'
import { errors } from '../runner/index.js'

/** The boss's last load report as the API keeps it (GET /cluster/stats, metrics). */
export interface BossLoad {
  /** When the API received it. */
  at: string
  epoch: number
  since: string
  queued: number
  running: number
  finished: number
}

/** Reports older than this are ignored (the boss is gone or silent): no limit is applied on stale data. */
const STALE_MS = 3000

export class Backpressure {
  private last: BossLoad | undefined
  private functions: Record<string, number> | undefined
  private acceptedSince = 0
  private at = 0

  constructor(private readonly maxQueued: number) {}

  /** A report from the boss (parsed: garbage never gets here). */
  observe(s: BossStatusReply): void {
    // a deposed boss's last report arriving after its successor's first
    if (this.last !== undefined && s.epoch < this.last.epoch && Date.now() - this.at < STALE_MS) return
    this.at = Date.now()
    const { epoch, since, queued, running, finished } = s
    this.last = { at: new Date(this.at).toISOString(), epoch, since, queued, running, finished }
    this.functions = s.functions
    this.acceptedSince = 0
  }

  /** The boss's last report, undefined before the first. */
  latest(): BossLoad | undefined {
    return this.last
  }

  /** Running jobs per function as the boss last reported them; undefined when no report is fresh. */
  runningByFunction(): Record<string, number> | undefined {
    return Date.now() - this.at > STALE_MS ? undefined : this.functions
  }

  /** Throws QUEUE_FULL (429) when `n` more jobs would pass the limit. */
  admit(n: number): void {
    if (this.maxQueued <= 0 || Date.now() - this.at > STALE_MS) return
    const queued = this.last?.queued ?? 0
    if (queued + this.acceptedSince + n > this.maxQueued) {
      throw errors.QUEUE_FULL(`the queue is full (${queued} jobs queued, limit ${this.maxQueued}); retry later`, {
        retryAfterSeconds: 1,
      })
    }
    this.acceptedSince += n
  }
}
