/**
 * One function's ready jobs, one heap per `concurrencyKey` (jobs without a key share the heap of
 * the empty key), and the keys with work taking turns: each pop serves the next key in the ring,
 * highest priority then oldest first within the key — so one tenant's 100,000 jobs do not starve
 * another's 10 (README "Limits"). A key at its limit (the caller's `keyOpen` says no) leaves the
 * ring until `unblock` brings it back, so a pump never loops over keys that cannot start.
 */
import { Heap } from './heap.js'
import type { QueueEntry } from './ready-queue.js'

function readyBefore(a: QueueEntry, b: QueueEntry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority
  return a.id < b.id
}

export class KeyLanes {
  private readonly buckets = new Map<string, Heap<QueueEntry>>()
  /** Keys with entries, in turn order (`head` marks the front; compacted when half is consumed). */
  private ring: string[] = []
  private head = 0
  private readonly inRing = new Set<string>()
  /** Keys with entries that are at their limit: out of the ring until unblocked. */
  private readonly blocked = new Set<string>()

  push(entry: QueueEntry): void {
    const key = entry.key ?? ''
    let heap = this.buckets.get(key)
    if (!heap) this.buckets.set(key, (heap = new Heap(readyBefore)))
    heap.push(entry)
    if (!this.blocked.has(key)) this.enqueue(key)
  }

  /** Keys are waiting their turn (blocked keys do not count). */
  get hasTurns(): boolean {
    return this.ring.length > this.head
  }

  /**
   * The next key's best entry that `isQueued` still accepts. Keys `keyOpen` refuses are set aside
   * (blocked); every key in the ring is looked at most once.
   */
  pop(isQueued: (e: QueueEntry) => boolean, keyOpen?: (key: string) => boolean): QueueEntry | undefined {
    for (let turns = this.ring.length - this.head; turns > 0; turns--) {
      const key = this.dequeue()
      const heap = this.buckets.get(key)
      if (!heap || !dropStale(heap, isQueued)) {
        this.buckets.delete(key)
        continue
      }
      if (key !== '' && keyOpen && !keyOpen(key)) {
        this.blocked.add(key)
        continue
      }
      const entry = heap.pop()!
      if (heap.size > 0) this.enqueue(key)
      else this.buckets.delete(key)
      return entry
    }
    return undefined
  }

  /** A key may start jobs again: back in the ring if it has entries. */
  unblock(key: string): void {
    if (!this.blocked.delete(key)) return
    if (this.buckets.get(key)?.size) this.enqueue(key)
  }

  /** Every key may start jobs again (the limits changed). */
  unblockAll(): void {
    for (const key of [...this.blocked]) this.unblock(key)
  }

  /** Drop the entries `isQueued` refuses. */
  compact(isQueued: (e: QueueEntry) => boolean): void {
    for (const [key, heap] of this.buckets) {
      const live: QueueEntry[] = []
      for (let e = heap.pop(); e !== undefined; e = heap.pop()) if (isQueued(e)) live.push(e)
      for (const e of live) heap.push(e)
      if (heap.size === 0) {
        this.buckets.delete(key)
        this.blocked.delete(key)
      }
    }
  }

  /** Entries held, stale ones included. */
  get size(): number {
    let n = 0
    for (const heap of this.buckets.values()) n += heap.size
    return n
  }

  private enqueue(key: string): void {
    if (this.inRing.has(key)) return
    this.inRing.add(key)
    this.ring.push(key)
  }

  private dequeue(): string {
    const key = this.ring[this.head++]!
    this.inRing.delete(key)
    if (this.head > 1024 && this.head * 2 > this.ring.length) {
      this.ring = this.ring.slice(this.head)
      this.head = 0
    }
    return key
  }
}

/** Pop stale entries off the top; true when a live one is left on top. */
function dropStale(heap: Heap<QueueEntry>, isQueued: (e: QueueEntry) => boolean): boolean {
  for (let e = heap.peek(); e !== undefined; e = heap.peek()) {
    if (isQueued(e)) return true
    heap.pop()
  }
  return false
}
