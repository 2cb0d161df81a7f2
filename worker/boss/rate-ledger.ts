/**
 * Rate windows that survive a boss change (README "Limits"). A rate limit counts starts in a
 * sliding window; the windows live in the acting boss's memory (flow-gate.ts), so a new boss
 * would start with empty ones and could allow up to `max` more starts inside one window. The
 * boss therefore writes every rate window that took starts in a pump turn to the store
 * (jobs/rate-ledger-store.ts) before it sends those dispatches, and a new boss reads them all
 * before its first dispatch. Only rate-limited functions pay for it: at most one write per window
 * per round trip to the store (pump turns meanwhile share the next write). Writes are
 * compare-and-set on the revision last seen and carry the term's epoch: a record written meanwhile
 * by an older boss is merged (its starts count too), one by a newer epoch stops this term unless
 * ZooKeeper confirms it still leads.
 */
import { errors, type Logger } from '../../runner/index.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import { MAX_RATE_WINDOW_MS, type RateLimit } from '../../jobs/limits.js'
import type { RateLedgerPort } from '../../jobs/rate-ledger-store.js'
import type { FlowGate, MovedWindow, WindowRef } from './flow-gate.js'
import { Reservations } from './rate-reservations.js'

/** Compare-and-set rounds before a write gives up (each lost round merges the rival's starts). */
const MAX_ROUNDS = 5

export interface RateLedgerDeps {
  /** Absent: nothing is stored (windows stay in memory, as before the ledger). */
  port: RateLedgerPort | undefined
  gate: FlowGate
  epoch: number
  log: Logger
  /**
   * A stored window claims a newer epoch: true when ZooKeeper confirms this term still leads (the
   * record is forged or corrupt, and is overwritten); false when the term was stopped.
   */
  forgedUnlessFenced(reason: string): Promise<boolean>
}

/** Distinct start times per stored window: starts are rounded up to 1/QUANTA of the window. */
const QUANTA = 128

/**
 * Starts as stored: each rounded up to a multiple of the window's 1/QUANTA, so a stored window has
 * at most QUANTA + 1 distinct times however large its `max`. Rounding up only delays when a start
 * leaves the window: a successor reading it is stricter by at most 1/QUANTA of the window, never
 * looser.
 */
function asStored(starts: number[], rate: RateLimit | undefined): number[] {
  const q = Math.max(1, Math.ceil((rate?.perMs ?? 1) / QUANTA))
  return q === 1 ? starts : starts.map((t) => Math.ceil(t / q) * q)
}

const idOf = (w: WindowRef) => (w.key === undefined ? w.fn : `${w.fn}\u0000${w.key}`)

export class RateLedger {
  private readonly revisions = new Map<string, number>()
  /** The write in progress per window: writes of one window go one after another. */
  private readonly chains = new Map<string, Promise<void>>()
  /** The write per window that has not begun yet (later records join it). */
  private readonly queued = new Map<string, Promise<void>>()
  private readonly reservations = new Reservations()
  private done = false

  constructor(private readonly d: RateLedgerDeps) {}

  /** True once every stored window is in the gate: until then rate-limited functions do not dispatch. */
  get loaded(): boolean {
    return this.done
  }

  /**
   * Read every stored window with starts inside the longest possible window into the gate, retried
   * until it succeeds or `signal` aborts; `onLoaded` then (the pump looks at rate-limited functions).
   */
  async load(signal: AbortSignal, onLoaded: () => void): Promise<void> {
    for (let failures = 0; !signal.aborted; failures++) {
      try {
        await this.read()
        this.done = true
        return onLoaded()
      } catch (err) {
        const delay = retryDelay(failures)
        this.d.log.warn({ err, retryInMs: delay }, 'reading the rate windows failed; retrying')
        await sleep(delay)
      }
    }
  }

  private async read(): Promise<void> {
    if (!this.d.port) return
    const windows = await this.d.port.readSince(Date.now() - MAX_RATE_WINDOW_MS)
    for (const w of windows) {
      const ref: WindowRef = w.key === undefined ? { fn: w.fn } : { fn: w.fn, key: w.key }
      this.revisions.set(idOf(ref), w.revision)
      this.d.gate.seedStarts(ref, w.starts)
    }
    if (windows.length > 0) this.d.log.info({ windows: windows.length }, 'rate windows of earlier bosses read')
  }

  /**
   * The starts a dispatch round took in these windows must be durable before its dispatches go:
   * undefined when the windows' reservations already cover them (rate-reservations.ts; a write
   * that refreshes reservations running low is started in the background), else a promise that
   * resolves once every uncovered window is stored as the gate holds it.
   */
  record(moved: readonly MovedWindow[]): Promise<void> | undefined {
    if (!this.d.port || moved.length === 0) return undefined
    const now = Date.now()
    const writes: Array<Promise<void>> = []
    for (const { window: w, taken } of moved) {
      const id = idOf(w)
      const rate = this.d.gate.rateOf(w)
      if (!this.reservations.take(id, taken, now)) writes.push(this.chain(w))
      else if (rate && !this.chains.has(id) && this.reservations.low(id, now, rate))
        this.chain(w).catch((err: unknown) => this.d.log.debug({ err, function: w.fn }, 'rate window refresh failed'))
    }
    return writes.length > 0 ? Promise.all(writes).then(() => undefined) : undefined
  }

  /**
   * One write of a window at a time; windows recorded while one is on its way join the next, which
   * reads the gate when it begins and so holds their starts too: at most one write per round trip
   * to the store, however many pump turns moved the window meanwhile.
   */
  private chain(w: WindowRef): Promise<void> {
    const id = idOf(w)
    const queued = this.queued.get(id)
    if (queued) return queued
    const next = (this.chains.get(id) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => {
        if (this.queued.get(id) === next) this.queued.delete(id)
        return this.write(w, id)
      })
      .catch((err: unknown) => {
        this.reservations.drop(id) // the next round waits for a write, and sees its failure
        throw err
      })
    this.chains.set(id, next)
    this.queued.set(id, next)
    const forget = () => {
      if (this.chains.get(id) === next) this.chains.delete(id)
    }
    next.then(forget, forget)
    return next
  }

  private async write(w: WindowRef, id: string): Promise<void> {
    const port = this.d.port!
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const now = Date.now()
      const rate = this.d.gate.rateOf(w)
      const held = this.d.gate.startsOf(w, now)
      const ahead = rate ? this.reservations.plan(id, held.length, now, rate) : undefined
      if (ahead) held.push(...ahead.reserved)
      const rec = { ...w, epoch: this.d.epoch, starts: asStored(held, rate) }
      const res = await port.write(rec, this.revisions.get(id) ?? 0)
      if (res.ok) {
        this.revisions.set(id, res.revision)
        ahead?.commit()
        return
      }
      const stored = res.stored
      if (stored && stored.epoch > this.d.epoch) {
        const reason = `the rate window of ${w.fn} was written by epoch ${stored.epoch}`
        if (!(await this.d.forgedUnlessFenced(reason))) throw errors.STALE_EPOCH(reason)
        this.d.log.error(
          { function: w.fn, epoch: stored.epoch },
          'a rate window claims an epoch no boss has had: overwriting it',
        )
      } else if (stored) this.d.gate.seedStarts(w, stored.starts) // an older boss's starts count too
      this.revisions.set(id, res.revision) // garbage there is overwritten
    }
    throw errors.STORE(`the rate window of ${w.fn} kept changing under the boss`)
  }
}
