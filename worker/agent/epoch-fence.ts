/**
 * A worker's fence against bosses that are no longer in charge: the newest boss epoch it has seen,
 * and the newest ZooKeeper has shown it (the only source trusted blindly). Dispatches, aborts and
 * inventories carrying an older epoch are refused (README "Guarantees", 1).
 */

/** A message may be at most this many elections ahead of the epoch ZooKeeper has shown this worker (watch lag). */
export const MAX_EPOCH_LEAD = 1

export type EpochVerdict = 'ok' | 'stale' | 'unknown'

export class EpochFence {
  /** The newest epoch seen, from ZooKeeper or from a message that passed {@link check}. */
  newest = 0
  /** Newest boss epoch ZooKeeper has shown us (election watches). */
  zk = 0

  /** Learn of a newer boss epoch from ZooKeeper; later messages older than it are refused. */
  observe(epoch: number): void {
    if (epoch > this.zk) this.zk = epoch
    if (epoch > this.newest) this.newest = epoch
  }

  /**
   * An epoch carried by a message, checked before it is believed: older than the newest seen → stale;
   * more than one election ahead of what ZooKeeper has shown us → unknown (forged or garbage — it must
   * not raise the fence, or one bad message would lock out the real boss).
   */
  check(epoch: number): EpochVerdict {
    if (epoch < this.newest) return 'stale'
    if (epoch > this.zk + MAX_EPOCH_LEAD) return 'unknown'
    this.newest = epoch
    return 'ok'
  }
}
