/** What the boss needs from the durable job store (implemented by jobs/store.ts). */
import type { Job } from '../../jobs/model.js'

export interface StoredJob {
  job: Job
  revision: number
}

export interface WatchEntry {
  id: string
  /** null when the entry was deleted or purged. */
  job: Job | null
  revision: number
}

export interface BossStore {
  /**
   * Deliver every current job, then `onInitialDone()`, then every later change, in store order.
   * Returns a stop function.
   */
  watchJobs(onEntry: (entry: WatchEntry) => void, onInitialDone: () => void): () => void
  /**
   * Fenced compare-and-set. `fn` sees the current record; the write fails with STALE_EPOCH when the
   * stored record carries a newer epoch than `epoch`. `known` skips the read on the hot path.
   */
  mutate(id: string, epoch: number, fn: (current: Job) => Job | null, known?: StoredJob): Promise<StoredJob | null>
  get(id: string): Promise<StoredJob | null>
  purge(id: string): Promise<void>
}
