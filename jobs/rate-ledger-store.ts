/**
 * Where the boss keeps its rate windows (README "Limits"): the start times of the last `max`
 * starts of each rate-limited function and key, so that a new boss knows what its predecessor
 * started inside the window and a rate limit holds across a boss change. A JetStream key-value
 * bucket per cluster (`bosun_<cluster>_rates`), one key per window, history 1; a window untouched
 * for longer than the longest rate window expires by itself (the bucket's max age). Every write is
 * a compare-and-set on the revision the boss last saw and carries its epoch, so an older boss's
 * write never overwrites a newer one's. Garbage is dropped with a warning.
 */
import { createHash } from 'node:crypto'
import type { KV, KvEntry } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import type { Logger } from '../runner/logger.js'
import { isObject } from './parse.js'
import { MAX_RATE_MAX, MAX_RATE_WINDOW_MS } from './limits.js'
import { FUNCTION_NAME_PATTERN } from './model.js'
import { isWrongLastSequence } from './store-codec.js'
import { openKvBucket } from './kv-bucket.js'

export function ratesBucket(cluster: string): string {
  return `bosun_${cluster}_rates`
}

/** One rate window: a function's (no key) or one key's of a function, with its starts (epoch ms, oldest first). */
export interface RateWindowRecord {
  fn: string
  key?: string
  epoch: number
  starts: number[]
}

export interface StoredRateWindow extends RateWindowRecord {
  revision: number
}

/** Not written: `revision` is the stored entry's (0: none), `stored` its window (null: none, or garbage). */
export type RateWriteResult =
  { ok: true; revision: number } | { ok: false; revision: number; stored: StoredRateWindow | null }

/** What the boss needs of the store. */
export interface RateLedgerPort {
  /** Every stored window whose newest start is at or after `since` (epoch ms). */
  readSince(since: number): Promise<StoredRateWindow[]>
  /** Store the window if the stored one is still at `revision` (0: none); else what is stored now. */
  write(rec: RateWindowRecord, revision: number): Promise<RateWriteResult>
}

/** The bucket key of a window: the function's, or a hash of the key (any string may be a key). */
export function windowKey(fn: string, key: string | undefined): string {
  if (key === undefined) return `fn.${fn}`
  return `key.${fn}.${createHash('sha256').update(key).digest('hex').slice(0, 40)}`
}

/** Windows read at once when a new boss loads them. */
const PARALLEL_READS = 64

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * `{ v, fn, key?, epoch, base, d }`: starts as `[offset from the first, how many]` pairs, so a window
 * of 10,000 starts the boss rounded to a few hundred distinct times stays small.
 */
export function encodeWindow(rec: RateWindowRecord): Uint8Array {
  const base = rec.starts[0] ?? 0
  const d: Array<[number, number]> = []
  for (const t of rec.starts) {
    const last = d.at(-1)
    if (last && last[0] === t - base) last[1]++
    else d.push([t - base, 1])
  }
  const out: Record<string, unknown> = { v: 1, fn: rec.fn, epoch: rec.epoch, base, d }
  if (rec.key !== undefined) out.key = rec.key
  return encoder.encode(JSON.stringify(out))
}

/** The window in `data`, or null when it is not one. */
export function decodeWindow(data: Uint8Array): RateWindowRecord | null {
  let x: unknown
  try {
    x = JSON.parse(decoder.decode(data))
  } catch {
    return null
  }
  if (!isObject(x) || x.v !== 1) return null
  const { fn, key, epoch, base, d } = x
  if (typeof fn !== 'string' || !FUNCTION_NAME_PATTERN.test(fn)) return null
  if (key !== undefined && typeof key !== 'string') return null
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 0) return null
  if (!Number.isSafeInteger(base) || !Array.isArray(d)) return null
  const starts: number[] = []
  let previous = -1
  for (const pair of d) {
    if (!Array.isArray(pair) || pair.length !== 2) return null
    const [offset, n] = pair as unknown[]
    if (!Number.isSafeInteger(offset) || (offset as number) <= previous) return null
    if (!Number.isSafeInteger(n) || (n as number) < 1 || starts.length + (n as number) > MAX_RATE_MAX) return null
    previous = offset as number
    for (let i = 0; i < (n as number); i++) starts.push((base as number) + (offset as number))
  }
  const rec: RateWindowRecord = { fn, epoch: epoch as number, starts }
  if (key !== undefined) rec.key = key
  return rec
}

export class RateLedgerStore implements RateLedgerPort {
  private constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /** Create the bucket (first start) or bind to it, retrying while JetStream is briefly unavailable. */
  static async open(o: { nc: NatsConnection; cluster: string; replicas?: number; logger: Logger; timeoutMs?: number }) {
    const kv = await openKvBucket(
      o.nc,
      ratesBucket(o.cluster),
      { history: 1, replicas: o.replicas ?? 1, ttl: MAX_RATE_WINDOW_MS + 60_000 },
      { what: 'cannot open the rate windows store', timeoutMs: o.timeoutMs ?? 30_000 },
    )
    return new RateLedgerStore(kv, o.logger.child({ component: 'rate-ledger' }))
  }

  async readSince(since: number): Promise<StoredRateWindow[]> {
    const keys: string[] = []
    for await (const k of await this.kv.keys()) keys.push(k)
    const out: StoredRateWindow[] = []
    for (let i = 0; i < keys.length; i += PARALLEL_READS) {
      const entries = await Promise.all(keys.slice(i, i + PARALLEL_READS).map((k) => this.kv.get(k)))
      for (const e of entries) {
        const w = this.windowOf(e)
        if (w && (w.starts.at(-1) ?? 0) >= since) out.push(w)
      }
    }
    return out
  }

  async write(rec: RateWindowRecord, revision: number): Promise<RateWriteResult> {
    const k = windowKey(rec.fn, rec.key)
    const data = encodeWindow(rec)
    try {
      const rev = revision === 0 ? await this.kv.create(k, data) : await this.kv.update(k, data, revision)
      return { ok: true, revision: rev }
    } catch (err) {
      if (!isWrongLastSequence(err) && !isKeyExists(err)) throw err
      const e = await this.kv.get(k)
      return { ok: false, revision: e?.revision ?? 0, stored: this.windowOf(e) }
    }
  }

  private windowOf(e: KvEntry | null): StoredRateWindow | null {
    if (e === null || e.operation !== 'PUT') return null
    const w = decodeWindow(e.value)
    if (!w || windowKey(w.fn, w.key) !== e.key) {
      this.log.warn({ key: e.key, revision: e.revision }, 'a rate window record that is not one: ignored')
      return null
    }
    return { ...w, revision: e.revision }
  }
}

/** kv.create() of a key that exists (the client may report it without the JetStream code). */
function isKeyExists(err: unknown): boolean {
  return err instanceof Error && /wrong last sequence|key exists/i.test(err.message)
}
