/**
 * Starts reserved ahead in a stored rate window (rate-ledger.ts). Each write of a window stores,
 * besides the starts it holds, a block of starts dated a little ahead (1/SPAN of the window); until
 * that moment, dispatches the block covers need no write of their own: the store already counts
 * them, at a time no earlier than their real one, so a successor that reads the window is stricter
 * than the truth, never looser. When a limit does not bind, the boss then writes a window about
 * SPAN times per window length instead of once per dispatch round, and dispatches do not wait for
 * the store. Unused reservations cost a successor at most 1/SPAN of the limit for one window; a
 * window at its limit has no room to reserve, and each round waits for its write as before.
 */
import type { RateLimit } from '../../jobs/limits.js'

/** A reservation spans 1/SPAN of the window and holds up to 1/SPAN of its max. */
export const SPAN = 8

interface Block {
  left: number
  until: number
}

const target = (rate: RateLimit) => Math.ceil(rate.max / SPAN)
const span = (rate: RateLimit) => Math.ceil(rate.perMs / SPAN)

export class Reservations {
  private readonly blocks = new Map<string, Block[]>()

  /** Take `n` starts from the window's reservations valid at `now`; false (nothing taken) if too few. */
  take(id: string, n: number, now: number): boolean {
    const live = this.live(id, now)
    let left = 0
    for (const b of live) left += b.left
    if (left < n) return false
    for (const b of live) {
      const k = Math.min(b.left, n)
      b.left -= k
      n -= k
      if (n === 0) break
    }
    return true
  }

  /** Whether the window's reservations run low at `now`: a write now refreshes them before they run out. */
  low(id: string, now: number, rate: RateLimit): boolean {
    const live = this.live(id, now)
    let left = 0
    for (const b of live) left += b.left
    return left < target(rate) / 2 || (live.at(-1)?.until ?? 0) - now < span(rate) / 2
  }

  /**
   * What a write of the window beginning at `now` stores besides its `held` starts: every start
   * still reserved (trimmed so that the window stays within `max`) and a new block. `commit` makes
   * the new block usable; call it once the write is durable.
   */
  plan(id: string, held: number, now: number, rate: RateLimit): { reserved: number[]; commit(): void } {
    const live = this.live(id, now)
    let room = Math.max(0, rate.max - held)
    const reserved: number[] = []
    for (const b of live) {
      b.left = Math.min(b.left, room)
      room -= b.left
      for (let i = 0; i < b.left; i++) reserved.push(b.until)
    }
    const block: Block = { left: Math.min(target(rate), room), until: now + span(rate) }
    for (let i = 0; i < block.left; i++) reserved.push(block.until)
    return {
      reserved,
      commit: () => {
        if (block.left === 0) return
        const list = this.live(id, Date.now())
        list.push(block)
        this.blocks.set(id, list)
      },
    }
  }

  /** Forget the window's reservations (a write failed: the next dispatch waits for a write again). */
  drop(id: string): void {
    this.blocks.delete(id)
  }

  /** The window's blocks valid at `now` (oldest first); expired ones are let go. */
  private live(id: string, now: number): Block[] {
    const list = this.blocks.get(id)
    if (!list) return []
    while (list.length > 0 && (list[0]!.until < now || list[0]!.left === 0)) list.shift()
    if (list.length === 0) this.blocks.delete(id)
    return list
  }
}
