/**
 * ThreadSharing: which function thread a run may take. Runs share threads, each thread holding up to
 * `perThread` at once, except runs of functions found unfit to share: a call held its thread past
 * the slice bound, it ignored its abort signal, or its thread died under it. Those run alone on a
 * thread from then on (for the life of the pool), so the pool's failure handling (pool.ts) knows
 * whom to blame next time. Kept apart so the rule can change without touching the pool's bookkeeping.
 */
import { basename, extname } from 'node:path'
import type { Logger } from '../../runner/logger.js'
import type { ThreadSlot } from './function-thread.js'

export class ThreadSharing {
  /** Function files that run alone on a thread. */
  private readonly alone = new Set<string>()

  constructor(
    /** Runs one shared thread holds at once. */
    readonly perThread: number,
    private readonly log: Logger,
  ) {}

  /** Runs of this function file take a thread of their own. */
  runsAlone(file: string): boolean {
    return this.alone.has(file)
  }

  /** From now on `file` runs alone (logged once; nothing to do when threads are not shared). */
  runAlone(file: string, why: string, jobId?: string): void {
    if (this.alone.has(file) || this.perThread === 1) return
    this.alone.add(file)
    this.log.warn(
      { function: basename(file, extname(file)), jobId },
      `${why}: this function runs alone on a thread from now on`,
    )
  }

  /**
   * The thread for a run of `file` among `slots`: for a function that runs alone, an empty one; else
   * the least loaded one with room that holds no run of such a function. Undefined: none fits.
   */
  pick<R>(slots: readonly ThreadSlot<R>[], file: string): ThreadSlot<R> | undefined {
    const alone = this.alone.has(file)
    let best: ThreadSlot<R> | undefined
    for (const slot of slots) {
      const held = slot.runs.size
      if (slot.retired || (alone ? held > 0 : slot.solo || held >= this.perThread)) continue
      if (held === 0) return slot
      if (best === undefined || held < best.runs.size) best = slot
    }
    return best
  }
}
