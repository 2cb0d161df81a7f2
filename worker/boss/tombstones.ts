/**
 * The tombstones on closed batches' state subjects (jobs/streams/records.ts, BatchState.closed), and
 * their removal once old enough. A batch state write is a compare-and-set on its subject's last
 * sequence, and a boss's first write of a batch expects none (0): had the successor's close deleted
 * the subject's last record, a deposed boss's held first write would find the subject empty and be
 * stored. So a close that may race an older epoch (a batch open when this term began: the only ones
 * an older boss can have seen) leaves a tombstone of this epoch, and the takeover replaces a
 * half-closed batch's leftover record by one.
 *
 * Each is removed `ttlMs` after it was stored (an hour by default): a deposed boss sends its writes
 * before its successor is elected (README, guarantee 1), so one lands later only while a buffer holds
 * it, and none holds one for long — the NATS client empties its outbound buffer at every reconnect
 * attempt (@nats-io/nats-core protocol.js: prepare → resetOutbound), and nats-server closes a
 * connection it stops hearing from after (ping_max + 1) × ping_interval (6 min by default), dropping
 * what it has not received. One held longer all the same would recreate the state record of a closed
 * batch, which nothing reads (a batch's records are read only while its submission exists) and the
 * next takeover replaces by a tombstone. The tombstones a term leaves are found by the next takeover.
 */
import type { Logger } from '../../runner/index.js'

/** How long a tombstone stays (BossSettings.tombstoneTtlMs). */
export const TOMBSTONE_TTL_MS = 3_600_000
/** The longest wait between two sweeps: a tombstone found at takeover is not removed much later than due. */
const MAX_SWEEP_WAIT_MS = 60_000
/** Removals sent at once (the store's reads limiter bounds what is in flight). */
const REMOVE_CHUNK = 100

export class Tombstones {
  private pending: Array<{ seq: number; dueMs: number }> = []
  private timer: NodeJS.Timeout | undefined
  private sweeping = false

  constructor(
    private readonly remove: (seq: number, signal: AbortSignal) => Promise<void>,
    private readonly ttlMs: number,
    private readonly log: Logger,
    private readonly signal: AbortSignal,
  ) {
    signal.addEventListener('abort', () => clearTimeout(this.timer), { once: true })
  }

  /** Tombstones waiting for removal. */
  get size(): number {
    return this.pending.length
  }

  /** A tombstone stored at `storedAtMs` (epoch ms), to remove `ttlMs` later. */
  add(seq: number, storedAtMs: number): void {
    if (seq <= 0 || this.signal.aborted) return
    this.pending.push({ seq, dueMs: storedAtMs + this.ttlMs })
    this.schedule()
  }

  private schedule(): void {
    if (this.timer !== undefined || this.sweeping || this.signal.aborted || this.pending.length === 0) return
    let next = Infinity
    for (const p of this.pending) next = Math.min(next, p.dueMs)
    const wait = Math.max(0, Math.min(next - Date.now(), MAX_SWEEP_WAIT_MS))
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.sweep()
    }, wait)
    this.timer.unref()
  }

  private async sweep(): Promise<void> {
    this.sweeping = true
    try {
      const now = Date.now()
      const due = this.pending.filter((p) => p.dueMs <= now)
      this.pending = this.pending.filter((p) => p.dueMs > now)
      for (let i = 0; i < due.length && !this.signal.aborted; i += REMOVE_CHUNK) {
        const chunk = due.slice(i, i + REMOVE_CHUNK)
        const failed = (
          await Promise.all(
            chunk.map((p) =>
              this.remove(p.seq, this.signal).then(
                () => null,
                () => p,
              ),
            ),
          )
        ).filter((p) => p !== null)
        if (failed.length === 0) continue
        if (!this.signal.aborted)
          this.log.warn({ tombstones: failed.length }, 'removing tombstones of closed batches failed; retrying later')
        // Retried at the next sweep, at most a minute later; a term that ends leaves them to the next takeover.
        for (const p of failed) this.pending.push({ seq: p.seq, dueMs: now + MAX_SWEEP_WAIT_MS })
      }
    } finally {
      this.sweeping = false
      this.schedule()
    }
  }
}
