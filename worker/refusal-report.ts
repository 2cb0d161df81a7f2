/**
 * Messages this worker refused because their boss epoch was stale (older than the newest it has
 * seen: a deposed boss's held dispatches or inventories) or unknown (ahead of what ZooKeeper has
 * shown): told to the cluster as `dispatch.refused` events — the fencing at the workers made
 * visible. A deposed boss can send hundreds in a burst, so refusals are counted per kind, epoch and
 * reason over one second and reported as one event with the count.
 */
import type { EventData } from '../runner/events/model.js'

export type Refusal = Omit<EventData['dispatch.refused'], 'count'>

export class RefusalReport {
  private readonly pending = new Map<string, EventData['dispatch.refused']>()
  private timer: NodeJS.Timeout | undefined
  private closed = false

  constructor(
    private readonly emit: (data: EventData['dispatch.refused'], epoch: number) => void,
    private readonly windowMs = 1000,
  ) {}

  add(r: Refusal): void {
    if (this.closed) return
    const key = `${r.what}/${r.epoch}/${r.reason}`
    const seen = this.pending.get(key)
    if (seen) {
      seen.count++
      seen.newest = Math.max(seen.newest, r.newest)
    } else this.pending.set(key, { ...r, count: 1 })
    if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), this.windowMs)
      this.timer.unref()
    }
  }

  /** Report what is pending now. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
    const all = [...this.pending.values()]
    this.pending.clear()
    for (const r of all) this.emit(r, r.epoch)
  }

  /** Report what is pending and take no more. Idempotent. */
  close(): void {
    this.flush()
    this.closed = true
  }
}
