/**
 * The boss's queue of jobs waiting to run: per function, keys taking turns (key-lanes.ts), within a
 * key highest priority first, then submission order (ULIDs sort by creation time); jobs with a
 * future `runAt` (delayMs, retry backoff) wait in a time-ordered heap until due. Removal is lazy: a
 * popped id whose entry is no longer queued is skipped by the caller's `isQueued` check.
 */
import { Heap } from './heap.js'
import { KeyLanes } from './key-lanes.js'

export interface QueueEntry {
  readonly id: string
  readonly fn: string
  readonly priority: number
  /** Epoch ms before which the job must not run (0: now). */
  readonly runAt: number
  /** Changes on every enqueue of the same job, so stale copies are recognised and dropped. */
  readonly token: number
  /** Its concurrencyKey (absent: none). */
  readonly key?: string | undefined
}

export class ReadyQueue {
  private readonly ready = new Map<string, KeyLanes>()
  private readonly delayed = new Heap<QueueEntry>((a, b) => a.runAt < b.runAt || (a.runAt === b.runAt && a.id < b.id))

  /** Add a job; it becomes ready at `runAt`. */
  push(entry: QueueEntry, now = Date.now()): void {
    if (entry.runAt > now) this.delayed.push(entry)
    else this.readyHeap(entry.fn).push(entry)
  }

  /** Move due delayed jobs to their ready heaps; returns the epoch ms of the next due job, if any. */
  promoteDue(now = Date.now()): number | undefined {
    for (let top = this.delayed.peek(); top !== undefined && top.runAt <= now; top = this.delayed.peek()) {
      this.delayed.pop()
      this.readyHeap(top.fn).push(top)
    }
    return this.delayed.peek()?.runAt
  }

  /** Functions that have ready jobs whose key is not set aside at its limit. */
  functionsWithWork(): string[] {
    const out: string[] = []
    for (const [fn, lanes] of this.ready) if (lanes.hasTurns) out.push(fn)
    return out
  }

  /**
   * The next ready job of `fn` that `isQueued` still accepts (stale entries are dropped): the next
   * key's turn; a key `keyOpen` refuses is set aside until {@link unblock}.
   */
  popReady(
    fn: string,
    isQueued: (e: QueueEntry) => boolean,
    keyOpen?: (key: string) => boolean,
  ): QueueEntry | undefined {
    return this.ready.get(fn)?.pop(isQueued, keyOpen)
  }

  /** Key `key` of `fn` may start jobs again. */
  unblock(fn: string, key: string): void {
    this.ready.get(fn)?.unblock(key)
  }

  /** Every key of `fn` may start jobs again (its limits changed). */
  unblockAll(fn: string): void {
    this.ready.get(fn)?.unblockAll()
  }

  /** Drop every entry `isQueued` no longer accepts (cancelled or re-queued jobs, e.g. delayed for days). */
  compact(isQueued: (e: QueueEntry) => boolean): void {
    const keep = (heap: Heap<QueueEntry>) => {
      const live: QueueEntry[] = []
      for (let e = heap.pop(); e !== undefined; e = heap.pop()) if (isQueued(e)) live.push(e)
      for (const e of live) heap.push(e)
    }
    keep(this.delayed)
    for (const lanes of this.ready.values()) lanes.compact(isQueued)
  }

  /** Entries held, stale ones included (the live queue depth is counted by the job table). */
  get size(): number {
    let n = this.delayed.size
    for (const lanes of this.ready.values()) n += lanes.size
    return n
  }

  clear(): void {
    this.ready.clear()
    this.delayed.clear()
  }

  private readyHeap(fn: string): KeyLanes {
    let lanes = this.ready.get(fn)
    if (!lanes) this.ready.set(fn, (lanes = new KeyLanes()))
    return lanes
  }
}
