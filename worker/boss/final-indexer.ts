/**
 * Finished job ids go to the listing index (the INDEX stream) in groups: every id added within one
 * turn of the event loop is written with the others of its state and function, one message per
 * group, so a burst of results costs a few index messages, not one per job. A final record whose
 * writer may have died before listing it is listed only if the index lacks it (`unlisted`).
 */
import type { Job } from '../../jobs/model.js'
import type { IndexedJob } from '../../jobs/streams/boss-store.js'
import { indexEntry } from '../../jobs/streams/reopened.js'
import type { BossStore } from './store-port.js'

/** How much earlier than a final's finish the index is read for it (clocks of different machines differ). */
const INDEX_CLOCK_MARGIN_MS = 5_000

/**
 * The jobs of `finals` (each finished at `at`, epoch ms) that the listing index does not list: the
 * entries stored since the earliest of them, a little earlier, are read once.
 */
export async function unlisted(
  store: BossStore,
  finals: ReadonlyArray<{ job: Job; at: number }>,
  signal?: AbortSignal,
): Promise<Job[]> {
  if (finals.length === 0) return []
  let since = Infinity
  for (const f of finals) since = Math.min(since, f.at)
  const indexed = await store.indexedSince(since - INDEX_CLOCK_MARGIN_MS, signal)
  return finals.filter(({ job }) => !indexed.has(indexEntry(job.id, job.run))).map((f) => f.job)
}

interface Pending {
  entries: IndexedJob[]
  done: Promise<void>
}

export class FinalIndexer {
  private pending: Pending | undefined

  constructor(private readonly store: BossStore) {}

  /** Add a finished job; resolves once its id is in the index (with the others of this turn). */
  add(job: Job): Promise<void> {
    if (!this.pending) {
      const entries: Pending['entries'] = []
      const p: Pending = {
        entries,
        done: new Promise<void>((resolve, reject) => {
          setImmediate(() => {
            if (this.pending === p) this.pending = undefined
            this.store.index(entries).then(resolve, reject)
          })
        }),
      }
      this.pending = p
    }
    const entry: IndexedJob = { id: job.id, state: job.state, fn: job.function }
    if (job.run) entry.run = job.run
    this.pending.entries.push(entry)
    return this.pending.done
  }
}
