/**
 * Finished job ids go to the listing index (the INDEX stream) in groups: every id added within one
 * turn of the event loop is written with the others of its state and function, one message per
 * group, so a burst of results costs a few index messages, not one per job.
 */
import type { Job, JobState } from '../../jobs/model.js'
import type { BossStore } from './store-port.js'

interface Pending {
  entries: Array<{ id: string; state: JobState; fn: string }>
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
    this.pending.entries.push({ id: job.id, state: job.state, fn: job.function })
    return this.pending.done
  }
}
