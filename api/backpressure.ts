/**
 * Backpressure: the acting boss reports how many jobs are queued every few hundred ms; past the
 * configured limit the API refuses new jobs with 429 + Retry-After instead of letting the queue
 * grow without bound. Jobs accepted since the last report count too, so a burst cannot overshoot
 * the limit by more than one report interval's worth of other APIs' submissions.
 */
import { errors } from '../runner/index.js'

export interface BossStats {
  epoch: number
  queued: number
  running: number
}

/** Reports older than this are ignored (the boss is gone or silent): no limit is applied on stale data. */
const STALE_MS = 3000

export class Backpressure {
  private queued = 0
  private running = 0
  private acceptedSince = 0
  private at = 0

  constructor(private readonly maxQueued: number) {}

  /** A report from the boss. */
  observe(stats: unknown): void {
    const s = stats as Partial<BossStats> | undefined
    if (!s || typeof s.queued !== 'number' || !Number.isFinite(s.queued) || s.queued < 0) return
    this.queued = s.queued
    this.running = typeof s.running === 'number' && Number.isFinite(s.running) && s.running >= 0 ? s.running : 0
    this.acceptedSince = 0
    this.at = Date.now()
  }

  /** The boss's last report (metrics), undefined before the first. */
  latest(): { queued: number; running: number } | undefined {
    return this.at === 0 ? undefined : { queued: this.queued, running: this.running }
  }

  /** Throws QUEUE_FULL (429) when `n` more jobs would pass the limit. */
  admit(n: number): void {
    if (this.maxQueued <= 0 || Date.now() - this.at > STALE_MS) return
    if (this.queued + this.acceptedSince + n > this.maxQueued) {
      throw errors.QUEUE_FULL(`the queue is full (${this.queued} jobs queued, limit ${this.maxQueued}); retry later`, {
        retryAfterSeconds: 1,
      })
    }
    this.acceptedSince += n
  }
}
