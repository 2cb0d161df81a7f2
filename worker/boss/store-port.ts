/**
 * What the boss needs from the durable job store (implemented by jobs/store.ts; faked in
 * test/helpers/boss-fakes.ts).
 */
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

export interface MutateOptions {
  /** Last known revision of the record; with `job` the store skips the read. */
  revision?: number
  /** Last known record at `revision`. */
  job?: Job
  /** Stop retrying once this aborts (the term ended). */
  signal?: AbortSignal
}

export interface BossStore {
  /**
   * Deliver every current job, then `onInitialDone()`, then every later change, in store order.
   * Returns a stop function.
   */
  watchJobs(onEntry: (entry: WatchEntry) => void, onInitialDone: () => void): () => void
  /**
   * Fenced compare-and-set. `fn` sees the current record (null: write nothing); the write fails with
   * STALE_EPOCH when the stored record carries a newer epoch than `epoch`, with BODY_TOO_LARGE
   * (`details.max`: the limit in bytes) when the record does not fit. Null when the job does not exist.
   */
  mutate(
    id: string,
    epoch: number,
    fn: (current: Job) => Job | null,
    opts?: MutateOptions,
  ): Promise<(StoredJob & { changed: boolean }) | null>
  get(id: string): Promise<StoredJob | null>
  purge(id: string): Promise<void>
}
