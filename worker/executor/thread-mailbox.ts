/**
 * ThreadMailbox: the function pool's messages to its threads, sent together. The run and abort
 * messages a turn of the main thread produces for one thread leave as one `batch` message once the
 * turn's synchronous work is done (a dispatch of many jobs is handled in one turn): a message wakes
 * the receiving thread, whatever it carries. Kept apart from the pool's scheduling (pool.ts).
 */
import type { AbortMessage, RunMessage } from './thread-protocol.js'
import type { ThreadSlot } from './function-thread.js'

export class ThreadMailbox<R> {
  private readonly unflushed = new Set<ThreadSlot<R>>()
  private flushQueued = false

  constructor(
    /** A run message the structured clone refused (its payload): the run must be failed by the caller. */
    private readonly unsendable: (slot: ThreadSlot<R>, msg: RunMessage, err: Error) => void,
  ) {}

  /** Queue a message for `slot`; it leaves with the rest of this turn's messages for that thread. */
  send(slot: ThreadSlot<R>, msg: RunMessage | AbortMessage): void {
    slot.outbox.push(msg)
    this.unflushed.add(slot)
    if (this.flushQueued) return
    this.flushQueued = true
    queueMicrotask(() => this.flush())
  }

  private flush(): void {
    this.flushQueued = false
    // A failed run may start another (and queue a message) while this loop runs: take the set first.
    const slots = [...this.unflushed]
    this.unflushed.clear()
    for (const slot of slots) {
      const msgs = slot.outbox
      slot.outbox = []
      if (slot.retired) continue
      try {
        slot.worker.postMessage(msgs.length === 1 ? msgs[0] : { t: 'batch', msgs })
      } catch {
        // A payload the structured clone refuses fails its run alone: send the messages one by one.
        for (const msg of msgs) this.postAlone(slot, msg)
      }
    }
  }

  private postAlone(slot: ThreadSlot<R>, msg: RunMessage | AbortMessage): void {
    try {
      slot.worker.postMessage(msg)
    } catch (err) {
      if (msg.t === 'run') this.unsendable(slot, msg, err as Error)
    }
  }
}
