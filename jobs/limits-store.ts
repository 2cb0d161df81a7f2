/**
 * Where operators' limit overrides live (README "Limits"): a JetStream key-value bucket per
 * cluster (`bosun_<cluster>_limits`, through @nats-io/kv), one key per function (`fn.<name>`),
 * history 1. Written by the API (`PUT /functions/:name/limits`), followed live by the boss, which
 * applies a change before its next dispatch and reads them all before its first. Values are read
 * back through jobs/limits.ts's parser: garbage is dropped with a warning.
 */
import type { KV, KvEntry } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { openKvBucket } from './kv-bucket.js'
import type { Logger } from '../runner/logger.js'
import { parseLimitsOverride, type LimitsOverride } from './limits.js'
import { FUNCTION_NAME_PATTERN } from './model.js'

export function limitsBucket(cluster: string): string {
  return `bosun_${cluster}_limits`
}

/** A stored override and when it was written. */
export interface StoredOverride {
  override: LimitsOverride
  updatedAt: string
}

/** What the boss needs: every override now, then each change (undefined: removed). */
export interface LimitsSource {
  watch(onChange: (fn: string, o: LimitsOverride | undefined) => void): Promise<() => void>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export class LimitsStore implements LimitsSource {
  private constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /** Create the bucket (first start) or bind to it, retrying while JetStream is briefly unavailable. */
  static async open(o: { nc: NatsConnection; cluster: string; replicas?: number; logger: Logger; timeoutMs?: number }) {
    const kv = await openKvBucket(
      o.nc,
      limitsBucket(o.cluster),
      { history: 1, replicas: o.replicas ?? 1 },
      { what: 'cannot open the limits store', timeoutMs: o.timeoutMs ?? 30_000 },
    )
    return new LimitsStore(kv, o.logger.child({ component: 'limits-store' }))
  }

  /** Store `fn`'s override (an empty one removes it). */
  async put(fn: string, override: LimitsOverride): Promise<StoredOverride | undefined> {
    if (Object.keys(override).length === 0) {
      await this.kv.purge(`fn.${fn}`)
      return undefined
    }
    const stored: StoredOverride = { override, updatedAt: new Date().toISOString() }
    await this.kv.put(`fn.${fn}`, encoder.encode(JSON.stringify(stored)))
    return stored
  }

  async get(fn: string): Promise<StoredOverride | undefined> {
    return this.overrideOf(await this.kv.get(`fn.${fn}`))
  }

  /** Every stored override, by function. */
  async list(): Promise<Map<string, StoredOverride>> {
    const out = new Map<string, StoredOverride>()
    const keys: string[] = []
    for await (const k of await this.kv.keys('fn.>')) keys.push(k)
    for (const k of keys) {
      const o = this.overrideOf(await this.kv.get(k))
      if (o) out.set(k.slice('fn.'.length), o)
    }
    return out
  }

  /**
   * Follow the overrides: every current one (read before the promise resolves), then each change
   * (`undefined`: removed), until the returned stop is called.
   */
  async watch(onChange: (fn: string, o: LimitsOverride | undefined) => void): Promise<() => void> {
    const seen = new Map<string, number>() // key → newest revision applied
    const apply = (e: KvEntry) => {
      if ((seen.get(e.key) ?? 0) >= e.revision) return
      seen.set(e.key, e.revision)
      const fn = e.key.slice('fn.'.length)
      if (FUNCTION_NAME_PATTERN.test(fn)) onChange(fn, this.overrideOf(e)?.override)
    }
    // Updates first (nothing written between the listing and the watch is missed), then the listing.
    const it = await this.kv.watch({ key: 'fn.>', include: 'updates' })
    void (async () => {
      for await (const e of it) apply(e)
    })().catch((err: unknown) => this.log.warn({ err }, 'limits watch ended'))
    const keys: string[] = []
    for await (const k of await this.kv.keys('fn.>')) keys.push(k)
    for (const k of keys) {
      const e = await this.kv.get(k)
      if (e) apply(e)
    }
    return () => it.stop()
  }

  private overrideOf(entry: KvEntry | null): StoredOverride | undefined {
    if (entry === null || entry.operation !== 'PUT') return undefined
    try {
      const x = JSON.parse(decoder.decode(entry.value)) as { override?: unknown; updatedAt?: unknown }
      const override = parseLimitsOverride(x.override)
      const updatedAt = typeof x.updatedAt === 'string' ? x.updatedAt : new Date(0).toISOString()
      return { override, updatedAt }
    } catch {
      this.log.warn({ key: entry.key }, 'a limits record that is not one: ignored')
      return undefined
    }
  }
}
