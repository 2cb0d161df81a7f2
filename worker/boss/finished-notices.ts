/**
 * The boss's finished notices: every job whose final record became durable during one turn of the
 * event loop goes out in one message on `bosun.<cluster>.events.finished` (`{ jobs: [{ id, state }] }`),
 * where a message per job cost the boss an encoded envelope and a publish each, nats-server a routed
 * message each, and every listener a decode each. Waiting API requests (`?wait`) hold one
 * subscription per API process and re-read the job from the store: a notice is a wake-up only.
 */
import type { FinishedNotice } from '../../jobs/protocol.js'

/** Most notices in one message (≈ 45 bytes each: far below NATS's max_payload). */
export const MAX_NOTICES_PER_MESSAGE = 1000

export class FinishedNotices {
  private pending: FinishedNotice[] = []
  private scheduled = false

  /** `send` publishes one message (fire-and-forget: a lost notice only delays a waiter to its timeout). */
  constructor(private readonly send: (jobs: FinishedNotice[]) => void) {}

  /** Announce a job whose final record is durable; sent with the others of this turn. */
  add(id: string, state: string): void {
    this.pending.push({ id, state })
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => this.flush())
  }

  /** Send what is pending now (also at the end of each turn). */
  flush(): void {
    this.scheduled = false
    const all = this.pending
    this.pending = []
    for (let i = 0; i < all.length; i += MAX_NOTICES_PER_MESSAGE) this.send(all.slice(i, i + MAX_NOTICES_PER_MESSAGE))
  }
}
