/**
 * Finished job ids go to the listing index (the INDEX stream) in groups: every id added within one
 * turn of the event loop is written with the others of its state and function, one message per
 * group, so a burst of results costs a few index messages, not one per job.
 */
import type { Job } from '../../jobs/model.js'
import type { IndexedJob } from '../../jobs/streams/boss-store.js'
import type { BossStore } from './store-port.js'

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
