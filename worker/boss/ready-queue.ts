/**
 * The boss's queue of jobs waiting to run: per function, highest priority first, then submission
 * order (ULIDs sort by creation time); jobs with a future `runAt` (delayMs, retry backoff) wait in a
 * time-ordered heap until due. Removal is lazy: a popped id whose entry is no longer queued is skipped
 * by the caller's `isQueued` check.
 */
import { Heap } from './heap.js'

export interface QueueEntry {
  readonly id: string
  readonly fn: string
  readonly priority: number
  /** Epoch ms before which the job must not run (0: now). */
  readonly runAt: number
  /** Changes on every enqueue of the same job, so stale copies are recognised and dropped. */
  readonly token: number
}

function readyBefore(a: QueueEntry, b: QueueEntry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority
  return a.id < b.id
}

export class ReadyQueue {
  private readonly ready = new Map<string, Heap<QueueEntry>>()
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

  /** Functions that have ready jobs. */
  functionsWithWork(): string[] {
    const out: string[] = []
    for (const [fn, heap] of this.ready) if (heap.size > 0) out.push(fn)
    return out
  }

  /** The next ready job of `fn` that `isQueued` still accepts (stale entries are dropped). */
  popReady(fn: string, isQueued: (e: QueueEntry) => boolean): QueueEntry | undefined {
    const heap = this.ready.get(fn)
    if (!heap) return undefined
    for (let e = heap.pop(); e !== undefined; e = heap.pop()) {
      if (isQueued(e)) return e
    }
    return undefined
  }

  /** Look at the next ready job of `fn` without removing it (stale entries are dropped). */
  peekReady(fn: string, isQueued: (e: QueueEntry) => boolean): QueueEntry | undefined {
    const heap = this.ready.get(fn)
    if (!heap) return undefined
    for (let e = heap.peek(); e !== undefined; e = heap.peek()) {
      if (isQueued(e)) return e
      heap.pop()
    }
    return undefined
  }

  /** Drop every entry `isQueued` no longer accepts (cancelled or re-queued jobs, e.g. delayed for days). */
  compact(isQueued: (e: QueueEntry) => boolean): void {
    const keep = (heap: Heap<QueueEntry>) => {
      const live: QueueEntry[] = []
      for (let e = heap.pop(); e !== undefined; e = heap.pop()) if (isQueued(e)) live.push(e)
      for (const e of live) heap.push(e)
    }
    keep(this.delayed)
    for (const heap of this.ready.values()) keep(heap)
  }

  /** Entries held, stale ones included (the live queue depth is counted by the job table). */
  get size(): number {
    let n = this.delayed.size
    for (const heap of this.ready.values()) n += heap.size
    return n
  }

  clear(): void {
    this.ready.clear()
    this.delayed.clear()
  }

  private readyHeap(fn: string): Heap<QueueEntry> {
    let heap = this.ready.get(fn)
    if (!heap) {
      heap = new Heap(readyBefore)
      this.ready.set(fn, heap)
    }
    return heap
  }
}
