/**
 * The boss's flow limits (README "Limits"): it is the one dispatcher and knows every running job,
 * so a limit is a count, not a lock. Counts running jobs per function and per (function, key) from
 * the door's bookkeeping (a job enters or leaves `running`), and the starts in each rate limit's
 * sliding window; answers whether one more job may start. Keys are per function; jobs without a
 * `concurrencyKey` are held only by the function's own limits.
 */
import { hasLimits, MAX_RATE_MAX, type FunctionLimits, type RateLimit } from '../../jobs/limits.js'

interface RunningJob {
  fn: string
  key: string | undefined
}

/** Start times within a rate window, oldest first (at most `max` kept). */
class Window {
  readonly starts: number[] = []

  prune(now: number, rate: RateLimit): void {
    const from = now - rate.perMs
    let drop = 0
    while (drop < this.starts.length && this.starts[drop]! <= from) drop++
    if (drop > 0) this.starts.splice(0, drop)
  }

  allows(now: number, rate: RateLimit): boolean {
    this.prune(now, rate)
    return this.starts.length < rate.max
  }

  /** When the oldest start leaves the window. */
  opensAt(rate: RateLimit): number {
    return this.starts.length === 0 ? 0 : this.starts[0]! + rate.perMs
  }

  add(now: number, rate: RateLimit): void {
    this.starts.push(now)
    if (this.starts.length > rate.max) this.starts.splice(0, this.starts.length - rate.max)
  }

  /**
   * Take in starts another boss recorded (rate-ledger.ts): both lists are sorted, and a start both
   * hold (seeded earlier from the same record) counts once.
   */
  merge(other: readonly number[]): void {
    const out: number[] = []
    let i = 0
    let j = 0
    const a = this.starts
    while (i < a.length || j < other.length) {
      if (j >= other.length || (i < a.length && a[i]! < other[j]!)) out.push(a[i++]!)
      else if (i >= a.length || other[j]! < a[i]!) out.push(other[j++]!)
      else {
        out.push(a[i++]!)
        j++
      }
    }
    this.starts.splice(0, this.starts.length, ...out.slice(-MAX_RATE_MAX))
  }
}

/** A rate window: a function's (no key) or one key's. */
export interface WindowRef {
  fn: string
  key?: string
}

/** A rate window that took starts since the last takeMovedWindows(), and how many. */
export interface MovedWindow {
  window: WindowRef
  taken: number
}

const keyOf = (fn: string, key: string) => `${fn}\u0000${key}`

export class FlowGate {
  private readonly limits = new Map<string, FunctionLimits>()
  private readonly running = new Map<string, RunningJob>()
  private readonly fnRunning = new Map<string, number>()
  private readonly keyRunning = new Map<string, number>()
  private readonly fnWindows = new Map<string, Window>()
  private readonly keyWindows = new Map<string, Window>()
  /** Earliest time a rate window refused a start opens again (the pump sets a timer). */
  private nextOpen: number | undefined
  /** Rate windows that took starts since takeMovedWindows() (the pump makes them durable). */
  private moved = new Map<string, MovedWindow>()

  constructor(
    /** A running job of (fn, key) ended, or a rate window may have opened: the key may start jobs again. */
    private readonly onFreed: (fn: string, key: string | undefined) => void = () => undefined,
  ) {}

  /** Set the limits in force for `fn` (undefined or empty: none). */
  setLimits(fn: string, l: FunctionLimits | undefined): void {
    if (hasLimits(l)) this.limits.set(fn, l!)
    else this.limits.delete(fn)
  }

  limitsOf(fn: string): FunctionLimits | undefined {
    return this.limits.get(fn)
  }

  /** Whether `fn` has any limit in force. */
  limited(fn: string): boolean {
    return this.limits.has(fn)
  }

  limitedFunctions(): string[] {
    return [...this.limits.keys()]
  }

  /** Running jobs per function (the boss's status: GET /functions). */
  runningByFunction(): Record<string, number> {
    return Object.fromEntries(this.fnRunning)
  }

  /** How many jobs of `fn` run now (as the boss counts them). */
  runningOf(fn: string): number {
    return this.fnRunning.get(fn) ?? 0
  }

  /** May one more job of `fn` start now (its function-wide limits)? */
  functionOpen(fn: string, now: number): boolean {
    const l = this.limits.get(fn)
    if (!l) return true
    if (l.concurrency !== undefined && (this.fnRunning.get(fn) ?? 0) >= l.concurrency) return false
    if (l.rateLimit) {
      const w = this.fnWindows.get(fn)
      if (w && !w.allows(now, l.rateLimit)) return this.refusedUntil(w.opensAt(l.rateLimit))
    }
    return true
  }

  /** May one more job of `fn` with key `key` start now (its per-key limits)? */
  keyOpen(fn: string, key: string, now: number): boolean {
    const l = this.limits.get(fn)
    if (!l) return true
    const k = keyOf(fn, key)
    if (l.keyConcurrency !== undefined && (this.keyRunning.get(k) ?? 0) >= l.keyConcurrency) return false
    if (l.keyRateLimit) {
      const w = this.keyWindows.get(k)
      if (w && !w.allows(now, l.keyRateLimit)) return this.refusedUntil(w.opensAt(l.keyRateLimit))
    }
    return true
  }

  /** Whether `fn` has a rate limit (its own or per key): its dispatches wait for the rate windows' write. */
  rateLimited(fn: string): boolean {
    const l = this.limits.get(fn)
    return l?.rateLimit !== undefined || l?.keyRateLimit !== undefined
  }

  /** A job was dispatched now: its start counts in the rate windows. */
  dispatched(fn: string, key: string | undefined, now: number): void {
    const l = this.limits.get(fn)
    if (!l) return
    if (l.rateLimit) {
      window(this.fnWindows, fn).add(now, l.rateLimit)
      this.took(fn, { fn })
    }
    if (key !== undefined && l.keyRateLimit) {
      const k = keyOf(fn, key)
      window(this.keyWindows, k).add(now, l.keyRateLimit)
      this.took(k, { fn, key })
    }
  }

  private took(id: string, w: WindowRef): void {
    const m = this.moved.get(id)
    if (m) m.taken++
    else this.moved.set(id, { window: w, taken: 1 })
  }

  /** The rate windows that took starts since the last call. */
  takeMovedWindows(): MovedWindow[] {
    if (this.moved.size === 0) return []
    const out = [...this.moved.values()]
    this.moved = new Map()
    return out
  }

  /** The rate limit a window counts for (undefined: none in force now). */
  rateOf(w: WindowRef): RateLimit | undefined {
    const l = this.limits.get(w.fn)
    return w.key === undefined ? l?.rateLimit : l?.keyRateLimit
  }

  /** The starts inside a rate window at `now` (oldest first; empty when none). */
  startsOf(w: WindowRef, now: number): number[] {
    const win = w.key === undefined ? this.fnWindows.get(w.fn) : this.keyWindows.get(keyOf(w.fn, w.key))
    if (!win) return []
    const rate = this.rateOf(w)
    if (rate) win.prune(now, rate)
    return [...win.starts]
  }

  /** Starts a predecessor (or a rival) recorded in a rate window count here too. */
  seedStarts(w: WindowRef, starts: readonly number[]): void {
    if (starts.length === 0) return
    const win = w.key === undefined ? window(this.fnWindows, w.fn) : window(this.keyWindows, keyOf(w.fn, w.key))
    win.merge(starts)
  }

  /** A job entered `running` (dispatched or adopted). Idempotent per job id. */
  enter(id: string, fn: string, key: string | undefined): void {
    if (this.running.has(id)) return
    this.running.set(id, { fn, key })
    this.fnRunning.set(fn, (this.fnRunning.get(fn) ?? 0) + 1)
    if (key !== undefined) this.keyRunning.set(keyOf(fn, key), (this.keyRunning.get(keyOf(fn, key)) ?? 0) + 1)
  }

  /** A job left `running` (finished, requeued, forgotten). Idempotent. */
  leave(id: string): void {
    const r = this.running.get(id)
    if (!r) return
    this.running.delete(id)
    decrement(this.fnRunning, r.fn)
    if (r.key !== undefined) decrement(this.keyRunning, keyOf(r.fn, r.key))
    if (this.limits.has(r.fn)) this.onFreed(r.fn, r.key)
  }

  /**
   * The earliest time a rate window that refused a start opens (then every blocked key of every
   * function is looked at again), and forget it: the pump arms a timer for it.
   */
  takeNextOpening(): number | undefined {
    const at = this.nextOpen
    this.nextOpen = undefined
    return at
  }

  /** Rate windows with no start left in them are dropped (keys come and go). */
  sweep(now: number): void {
    for (const [fn, w] of this.fnWindows) {
      const rate = this.limits.get(fn)?.rateLimit
      if (!rate || (w.prune(now, rate), w.starts.length === 0)) this.fnWindows.delete(fn)
    }
    for (const [k, w] of this.keyWindows) {
      const rate = this.limits.get(k.slice(0, k.indexOf('\u0000')))?.keyRateLimit
      if (!rate || (w.prune(now, rate), w.starts.length === 0)) this.keyWindows.delete(k)
    }
  }

  private refusedUntil(at: number): false {
    if (this.nextOpen === undefined || at < this.nextOpen) this.nextOpen = at
    return false
  }
}

function window(map: Map<string, Window>, k: string): Window {
  let w = map.get(k)
  if (!w) map.set(k, (w = new Window()))
  return w
}

function decrement(map: Map<string, number>, k: string): void {
  const n = (map.get(k) ?? 0) - 1
  if (n > 0) map.set(k, n)
  else map.delete(k)
}
