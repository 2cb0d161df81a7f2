/**
 * Where schedules live: a JetStream key-value bucket per cluster (`bosun_<cluster>_schedules`,
 * through @nats-io/kv), one key per schedule definition (`def.<id>`) and one for its firing state
 * (`fired.<id>`, written by the boss after each fire), history 1. Durable like the jobs, readable
 * by every API process, and followed live by the boss (watch). Creates are create-if-absent and
 * updates compare-and-set on the revision read, so two API processes cannot overwrite each other.
 * Values are read back through model.ts's parsers: garbage is dropped with a warning.
 */
import type { KV, KvEntry } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { errors } from '../../runner/errors.js'
import { openKvBucket } from '../kv-bucket.js'
import type { Logger } from '../../runner/logger.js'
import { parseFiredMark, parseSchedule, type FiredMark, type Schedule } from './model.js'

export function scheduleBucket(cluster: string): string {
  return `bosun_${cluster}_schedules`
}

/** A schedule with the revision it was read at (the compare-and-set of an update). */
export interface StoredSchedule {
  schedule: Schedule
  revision: number
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const encode = (x: unknown) => encoder.encode(JSON.stringify(x))
/** The server's answer to a create of a key that exists, or an update at an older revision. */
const WRONG_REVISION = /wrong last sequence|key exists/i

export class ScheduleStore {
  private constructor(
    private readonly kv: KV,
    private readonly log: Logger,
  ) {}

  /**
   * Create the bucket (first start) or bind to it, retrying while JetStream is briefly unavailable
   * (a restarting server, a cluster electing its meta leader) for up to `timeoutMs`.
   */
  static async open(o: { nc: NatsConnection; cluster: string; replicas?: number; logger: Logger; timeoutMs?: number }) {
    const kv = await openKvBucket(
      o.nc,
      scheduleBucket(o.cluster),
      { history: 1, replicas: o.replicas ?? 1 },
      { what: 'cannot open the schedule store', timeoutMs: o.timeoutMs ?? 30_000 },
    )
    return new ScheduleStore(kv, o.logger.child({ component: 'schedule-store' }))
  }

  /** Store a new schedule; SCHEDULE_EXISTS when its id is taken. */
  async create(s: Schedule): Promise<number> {
    try {
      return await this.kv.create(`def.${s.id}`, encode(s))
    } catch (err) {
      if (WRONG_REVISION.test((err as Error).message)) throw errors.SCHEDULE_EXISTS(`schedule ${s.id} exists`)
      throw err
    }
  }

  /** Replace a schedule read at `revision`; SCHEDULE_CHANGED when someone wrote it since. */
  async update(s: Schedule, revision: number): Promise<number> {
    try {
      return await this.kv.update(`def.${s.id}`, encode(s), revision)
    } catch (err) {
      if (WRONG_REVISION.test((err as Error).message))
        throw errors.SCHEDULE_CHANGED(`schedule ${s.id} changed meanwhile; read it again`)
      throw err
    }
  }

  async get(id: string): Promise<StoredSchedule | undefined> {
    const entry = await this.kv.get(`def.${id}`)
    const schedule = this.scheduleOf(entry)
    return schedule && entry ? { schedule, revision: entry.revision } : undefined
  }

  /** Every schedule, by id. */
  async list(): Promise<StoredSchedule[]> {
    const keys: string[] = []
    for await (const k of await this.kv.keys('def.>')) keys.push(k.slice('def.'.length))
    const all = await Promise.all(keys.map((id) => this.get(id)))
    return all.filter((s) => s !== undefined).sort((a, b) => (a.schedule.id < b.schedule.id ? -1 : 1))
  }

  /** Delete a schedule and its firing state; false when there was none. */
  async remove(id: string): Promise<boolean> {
    if ((await this.get(id)) === undefined) return false
    await this.kv.purge(`def.${id}`)
    await this.kv.purge(`fired.${id}`)
    return true
  }

  async fired(id: string): Promise<FiredMark | undefined> {
    const entry = await this.kv.get(`fired.${id}`)
    if (entry === null || entry.operation !== 'PUT') return undefined
    const mark = parseFiredMark(this.json(entry))
    if (mark === undefined) this.log.warn({ key: entry.key }, 'a fired mark that is not one: ignored')
    return mark
  }

  async markFired(id: string, mark: FiredMark): Promise<void> {
    await this.kv.put(`fired.${id}`, encode(mark))
  }

  /**
   * Follow the definitions: every current one first, then each change (`undefined`: deleted), until
   * the returned stop is called.
   */
  async watch(onChange: (id: string, s: Schedule | undefined) => void): Promise<() => void> {
    const it = await this.kv.watch({ key: 'def.>' })
    void (async () => {
      for await (const e of it) onChange(e.key.slice('def.'.length), this.scheduleOf(e))
    })().catch((err: unknown) => this.log.warn({ err }, 'schedule watch ended'))
    return () => it.stop()
  }

  private scheduleOf(entry: KvEntry | null): Schedule | undefined {
    if (entry === null || entry.operation !== 'PUT') return undefined
    const s = parseSchedule(this.json(entry))
    if (s === undefined || `def.${s.id}` !== entry.key) {
      this.log.warn({ key: entry.key }, 'a schedule record that is not one: ignored')
      return undefined
    }
    return s
  }

  private json(entry: KvEntry): unknown {
    try {
      return JSON.parse(decoder.decode(entry.value)) as unknown
    } catch {
      return undefined
    }
  }
}
