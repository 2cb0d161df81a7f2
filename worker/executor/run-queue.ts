/**
 * A FIFO queue with O(1) push and shift: runs waiting for a free thread, the boss's due running
 * writes (worker/boss/commit.ts). Entries that were
 * aborted while waiting are not searched for and removed: `shift(keep)` skips them (lazy deletion).
 */
export class RunQueue<T> {
  private items: (T | undefined)[] = []
  private head = 0

  /** Entries held, including skipped-over ones not yet shifted out. */
  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  /** The oldest entry, left in place. */
  peek(): T | undefined {
    return this.items[this.head]
  }

  clear(): void {
    this.items = []
    this.head = 0
  }

  /** The oldest entry for which `keep` is true; entries before it are dropped. */
  shift(keep: (item: T) => boolean): T | undefined {
    while (this.head < this.items.length) {
      const item = this.items[this.head] as T
      this.items[this.head++] = undefined
      if (this.head > 1024 && this.head * 2 > this.items.length) {
        this.items = this.items.slice(this.head)
        this.head = 0
      }
      if (keep(item)) return item
    }
    if (this.head > 0) {
      this.items = []
      this.head = 0
    }
    return undefined
  }
}
