/**
 * The limits and rate-window stores of the boss's bench (test/helpers/boss-fakes.ts) in memory: what
 * jobs/limits-store.ts and jobs/rate-ledger-store.ts keep in JetStream, with the same compare-and-set.
 */
import type { LimitsOverride } from '../../jobs/limits.js'
import type { LimitsSource } from '../../jobs/limits-store.js'
import {
  windowKey,
  type RateLedgerPort,
  type RateWindowRecord,
  type RateWriteResult,
  type StoredRateWindow,
} from '../../jobs/rate-ledger-store.js'
import { tick } from './memory-done.js'

/** The limits store in memory: overrides set by a test reach the watching terms at once. */
export class MemoryLimits implements LimitsSource {
  private readonly overrides = new Map<string, LimitsOverride>()
  private readonly watchers = new Set<(fn: string, o: LimitsOverride | undefined) => void>()

  set(fn: string, o: LimitsOverride | undefined): void {
    if (o === undefined) this.overrides.delete(fn)
    else this.overrides.set(fn, o)
    for (const w of this.watchers) w(fn, o)
  }

  async watch(onChange: (fn: string, o: LimitsOverride | undefined) => void): Promise<() => void> {
    this.watchers.add(onChange)
    for (const [fn, o] of this.overrides) onChange(fn, o)
    return () => this.watchers.delete(onChange)
  }
}

/** The rate windows store in memory (compare-and-set on revisions, as the KV bucket does). */
export class MemoryRates implements RateLedgerPort {
  readonly windows = new Map<string, StoredRateWindow>()
  private revision = 0
  /** Every write that landed, in order. */
  readonly writes: RateWindowRecord[] = []

  /** A window written behind the boss's back (by another epoch). */
  put(rec: RateWindowRecord): void {
    this.windows.set(windowKey(rec.fn, rec.key), { ...rec, starts: [...rec.starts], revision: ++this.revision })
  }

  /** Reads wait for this (a slow store), then fail `failReads` times. */
  readGate: Promise<void> | undefined
  failReads = 0

  async readSince(since: number): Promise<StoredRateWindow[]> {
    await tick()
    if (this.readGate) await this.readGate
    if (this.failReads > 0 && this.failReads--) throw new Error('rates store unavailable')
    return [...this.windows.values()].filter((w) => (w.starts.at(-1) ?? 0) >= since)
  }

  /** Writes wait for this (a slow store); `writesStarted` counts them as they begin. */
  writeGate: Promise<void> | undefined
  writesStarted = 0

  async write(rec: RateWindowRecord, revision: number): Promise<RateWriteResult> {
    this.writesStarted++
    await tick()
    if (this.writeGate) await this.writeGate
    const k = windowKey(rec.fn, rec.key)
    const had = this.windows.get(k)
    if ((had?.revision ?? 0) !== revision) return { ok: false, revision: had?.revision ?? 0, stored: had ?? null }
    this.put(rec)
    this.writes.push(rec)
    return { ok: true, revision: this.revision }
  }
}
