/**
 * A worker's job slots. At most `slots` attempts run at once (WORKER_CONCURRENCY); attempts the boss
 * dispatched ahead of a free slot (its prefetch, README "Prefetch") wait here in arrival order and
 * start the moment a running one ends, without a round trip to the boss. A waiting attempt that is
 * withdrawn (cancelled, handed back) leaves without ever taking a slot.
 */
import { RunQueue } from '../executor/run-queue.js'

/** One attempt's place: it started (holds a slot), waits, or was withdrawn while waiting. */
export interface Ticket {
  state: 'waiting' | 'started' | 'withdrawn'
  readonly start: () => void
  readonly withdrawn: () => void
}

export class StartGate {
  private busy = 0
  private waitingCount = 0
  private readonly queue = new RunQueue<Ticket>()

  constructor(private readonly slots: number) {}

  /** Attempts holding a slot (running now). */
  get running(): number {
    return this.busy
  }

  /** Attempts waiting for a slot. */
  get waiting(): number {
    return this.waitingCount
  }

  /**
   * Take a slot for an attempt: `start` runs now (synchronously) when one is free, else once one is.
   * `withdrawn` runs instead of `start` when the ticket is withdrawn while it waits.
   */
  take(start: () => void, withdrawn: () => void): Ticket {
    const ticket: Ticket = { state: 'waiting', start, withdrawn }
    if (this.busy < this.slots) this.begin(ticket)
    else {
      this.queue.push(ticket)
      this.waitingCount++
    }
    return ticket
  }

  /** Withdraw a waiting ticket (its `withdrawn` runs); false when it already started or left. */
  withdraw(ticket: Ticket): boolean {
    if (ticket.state !== 'waiting') return false
    ticket.state = 'withdrawn'
    this.waitingCount--
    ticket.withdrawn()
    return true
  }

  /** A started attempt ended: its slot goes to the oldest waiting ticket. */
  release(): void {
    this.busy--
    const next = this.queue.shift((t) => t.state === 'waiting')
    if (next === undefined) return
    this.waitingCount--
    this.begin(next)
  }

  private begin(ticket: Ticket): void {
    ticket.state = 'started'
    this.busy++
    ticket.start()
  }
}
