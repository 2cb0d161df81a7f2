/**
 * The boss test bench: in-memory stand-ins for what a boss term talks to — the job store (fenced
 * compare-and-set, a watch whose initial load the test can hold back, writes it can hold or fail),
 * the registry, the NATS transport and the workers behind it — so a case about the boss's decisions
 * runs in milliseconds. Anything about real ZooKeeper or NATS behaviour stays in real-server tests.
 */
import { EventEmitter } from 'node:events'
import { errors, silentLogger, type MessageHandler, type ServiceEntry, type Transport } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import {
  INVENTORY_PAGE,
  MSG,
  type AttemptOutcome,
  type AttemptResult,
  type BossStatusReply,
  type InventoryReply,
  type ResultsReply,
} from '../../jobs/protocol.js'
import { DEFAULT_BOSS_SETTINGS, type BossSettings } from '../../worker/boss/settings.js'
import type { BossStore, MutateOptions, StoredJob, WatchEntry } from '../../worker/boss/store-port.js'
import { BossTerm } from '../../worker/boss/term.js'

let seq = 0
/** A job id that sorts in creation order (like a ULID). */
export function jobId(): string {
  return `J${String(++seq).padStart(8, '0')}`
}

/** A job as the API stores it. */
export function newJob(over: Partial<Job> = {}): Job {
  return {
    id: jobId(),
    function: 'echo',
    state: 'queued',
    attempts: 0,
    maxAttempts: 1,
    payload: null,
    priority: 0,
    timeoutMs: 60_000,
    createdAt: new Date().toISOString(),
    epoch: 0,
    ...over,
  }
}

interface Watcher {
  onEntry(e: WatchEntry): void
  onInitialDone(): void
  /** Initial records not delivered yet (when the load is held). */
  backlog: WatchEntry[]
  initialDone: boolean
}

/** The job store in memory, with the same fencing rules as jobs/store.ts. */
export class MemoryStore implements BossStore {
  readonly records = new Map<string, StoredJob>()
  /** Every write that landed, in order. */
  readonly writes: Array<{ id: string; epoch: number; state: string; revision: number }> = []
  /** Every mutate call (including ones that failed or were refused). */
  mutateCalls = 0
  maxBytes = 1024 * 1024 - 1024
  /** Initial loads of new watches are held until releaseLoad(). */
  holdLoad = false
  /** Writes wait for this (a boss "in the middle of a write"). */
  gate: Promise<void> | undefined
  /** Fail this many mutate attempts with a transient error; Infinity: every one. */
  failWrites = 0
  private revision = 0
  private readonly watchers = new Set<Watcher>()

  /** Store a job as the API does (create); returns its revision. */
  put(job: Job): number {
    return this.apply(job)
  }

  watchJobs(onEntry: (e: WatchEntry) => void, onInitialDone: () => void): () => void {
    const backlog = [...this.records.values()]
      .sort((a, b) => a.revision - b.revision)
      .map((s) => ({ id: s.job.id, job: s.job, revision: s.revision }))
    const w: Watcher = { onEntry, onInitialDone, backlog, initialDone: false }
    this.watchers.add(w)
    if (!this.holdLoad) setImmediate(() => this.releaseLoad(Infinity, w))
    return () => void this.watchers.delete(w)
  }

  /** Deliver up to `n` held initial records to every watch (all: then "initial load done"). */
  releaseLoad(n = Infinity, only?: Watcher): void {
    for (const w of only ? [only] : this.watchers) {
      if (!this.watchers.has(w) || w.initialDone) continue
      for (let i = 0; i < n && w.backlog.length > 0; i++) w.onEntry(w.backlog.shift()!)
      if (w.backlog.length === 0) {
        w.initialDone = true
        w.onInitialDone()
      }
    }
  }

  async mutate(
    id: string,
    epoch: number,
    fn: (current: Job) => Job | null,
    opts: MutateOptions = {},
  ): Promise<(StoredJob & { changed: boolean }) | null> {
    let known: StoredJob | undefined =
      opts.job !== undefined && opts.revision !== undefined ? { job: opts.job, revision: opts.revision } : undefined
    for (let conflicts = 0; ;) {
      this.mutateCalls++
      if (opts.signal?.aborted) throw errors.NOT_LEADER('mutate abandoned')
      await new Promise((r) => setImmediate(r))
      if (this.failWrites > 0) {
        this.failWrites--
        throw errors.STORE('transient store failure (test)')
      }
      const cur = this.records.get(id)
      if (!cur) return null
      const base = known && known.revision === cur.revision ? known : cur
      if (base.job.epoch > epoch)
        throw errors.STALE_EPOCH(`job ${id} was written by epoch ${base.job.epoch}; writer has epoch ${epoch}`)
      const next = fn(base.job)
      if (next === null) return { ...base, changed: false }
      const record: Job = { ...next, id, epoch }
      const bytes = Buffer.byteLength(JSON.stringify(record))
      if (bytes > this.maxBytes)
        throw errors.BODY_TOO_LARGE(`record of ${bytes} bytes`, { details: { id, bytes, max: this.maxBytes } })
      if (this.gate) await this.gate
      const now = this.records.get(id)
      if (now?.revision !== base.revision) {
        if (++conflicts > 16) throw errors.STORE('too many conflicts')
        known = undefined
        continue
      }
      if (now.job.epoch > epoch) throw errors.STALE_EPOCH(`job ${id} was written by epoch ${now.job.epoch}`)
      const revision = this.apply(record)
      return { job: record, revision, changed: true }
    }
  }

  async get(id: string): Promise<StoredJob | null> {
    return this.records.get(id) ?? null
  }

  async purge(id: string): Promise<void> {
    this.records.delete(id)
  }

  /** Write a record directly (another boss, an operator): watchers see it. */
  apply(job: Job): number {
    const revision = ++this.revision
    this.records.set(job.id, { job, revision })
    this.writes.push({ id: job.id, epoch: job.epoch, state: job.state, revision })
    for (const w of this.watchers) {
      if (w.initialDone) w.onEntry({ id: job.id, job, revision })
      else w.backlog = [...w.backlog.filter((e) => e.id !== job.id), { id: job.id, job, revision }]
    }
    return revision
  }
}

/** A worker process as the boss sees it on NATS: takes dispatches, answers inventories and aborts. */
export class FakeWorker {
  readonly address: string
  /** Every job id it was asked to start, in order (a second start of an id is a run twice). */
  readonly starts: string[] = []
  readonly running = new Map<string, { attempt: number; epoch: number; startedAt: string }>()
  /** Finished attempts the boss has not acknowledged. */
  readonly held = new Map<string, AttemptResult>()
  readonly aborted: string[] = []
  /** How it answers: normally, not at all (timeout), or it has no subscription (no responders). */
  mode: 'ok' | 'silent' | 'gone' = 'ok'
  dispatchRequests = 0

  constructor(
    readonly id: string,
    public capacity = 4,
    readonly functions: string[] = ['echo'],
  ) {
    this.address = `w.${id}`
  }

  entry(): ServiceEntry {
    return {
      id: this.id,
      address: this.address,
      host: 'test',
      pid: 1,
      meta: { role: 'worker', functions: this.functions, capacity: this.capacity },
      registeredAt: new Date().toISOString(),
    }
  }

  handle(type: string, body: any): unknown {
    switch (type) {
      case MSG.dispatch: {
        this.dispatchRequests++
        return {
          answers: (body.jobs as Job[]).map((j) => {
            if (this.running.has(j.id) || this.held.has(j.id)) return { id: j.id, accepted: true }
            if (this.running.size >= this.capacity) return { id: j.id, accepted: false, reason: 'full' }
            this.starts.push(j.id)
            this.running.set(j.id, { attempt: j.attempts, epoch: body.epoch, startedAt: new Date().toISOString() })
            return { id: j.id, accepted: true }
          }),
        }
      }
      case MSG.inventory: {
        const running = [...this.running].map(([jobId, r]) => ({ jobId, ...r }))
        const held = [...this.held.values()]
          .map((r) => ({ jobId: r.jobId, attempt: r.attempt }))
          .filter((h) => body.after === undefined || h.jobId > body.after)
        const reply: InventoryReply = { worker: this.id, running, held: held.slice(0, INVENTORY_PAGE) }
        return reply
      }
      case MSG.abort:
        this.aborted.push(body.jobId)
        return { aborted: this.running.has(body.jobId) }
      default:
        throw errors.BAD_MESSAGE(`unexpected ${type}`)
    }
  }

  /** Finish a running job: the result is held until a boss acknowledges it. */
  finish(id: string, outcome: AttemptOutcome = { ok: true, result: id }): AttemptResult {
    const r = this.running.get(id)
    if (!r) throw new Error(`${this.id} does not run ${id}`)
    this.running.delete(id)
    const result: AttemptResult = {
      jobId: id,
      attempt: r.attempt,
      epoch: r.epoch,
      worker: this.id,
      startedAt: r.startedAt,
      finishedAt: new Date().toISOString(),
      outcome,
    }
    this.held.set(id, result)
    return result
  }

  /** Send every held result to `term` (as the outbox does); forget the acknowledged ones. */
  async deliver(term: BossTerm): Promise<ResultsReply> {
    const reply = await term.onResults({ results: [...this.held.values()] })
    for (const id of reply.acked) this.held.delete(id)
    return reply
  }
}

/** NATS between the boss and the fake workers. */
export class FakeTransport extends EventEmitter implements Transport {
  readonly address = 'w.boss'
  connected = true
  readonly workers = new Map<string, FakeWorker>()
  readonly sent: Array<{ address: string; type: string; body: unknown }> = []
  /** Fail requests before sending, as the real transport does while disconnected. */
  disconnected = false

  add(...workers: FakeWorker[]): void {
    for (const w of workers) this.workers.set(w.address, w)
  }

  send(address: string, type: string, body: unknown): boolean {
    this.sent.push({ address, type, body })
    const w = this.workers.get(address)
    if (w && w.mode === 'ok') w.handle(type, body)
    return true
  }

  async request<R>(address: string, type: string, body: unknown, opts: { timeoutMs?: number } = {}): Promise<R> {
    if (this.disconnected)
      throw errors.NATS_NOT_CONNECTED('not connected (test)', { details: { to: address, type, sent: false } })
    await new Promise((r) => setImmediate(r))
    const w = this.workers.get(address)
    if (!w || w.mode === 'gone') throw errors.NO_RESPONDERS(`no process listens at ${address}`)
    if (w.mode === 'silent') {
      await new Promise((r) => setTimeout(r, opts.timeoutMs ?? 100))
      throw errors.REQUEST_TIMEOUT(`no reply from ${address}`)
    }
    return w.handle(type, body) as R
  }

  handle(_type: string, _handler: MessageHandler): void {}

  async close(): Promise<void> {}
}

/** The registry as the boss sees it: worker registrations and live nodes, with change events. */
export class FakeRegistry extends EventEmitter {
  readonly workers = new Map<string, ServiceEntry>()
  readonly nodes = new Map<string, ServiceEntry>()

  /** A worker process: registered as a worker and listed as a live node. */
  join(w: FakeWorker): void {
    this.workers.set(w.id, w.entry())
    this.nodes.set(w.id, w.entry())
    this.changed()
  }

  /** Its ZooKeeper session ended: registration and node entry vanish. */
  leave(id: string): void {
    this.workers.delete(id)
    this.nodes.delete(id)
    this.changed()
  }

  changed(): void {
    this.emit('change', 'worker', [...this.workers.values()])
    this.emit('peers', [...this.nodes.values()])
  }

  async getCapable(service: string): Promise<ServiceEntry[]> {
    return service === 'worker' ? [...this.workers.values()] : []
  }

  async getPeers(): Promise<ServiceEntry[]> {
    return [...this.nodes.values()]
  }

  async register(): Promise<void> {}
  async updateMeta(): Promise<void> {}
  async unregister(): Promise<void> {}
  async nsendCapable(): Promise<number> {
    return 0
  }
  async nsendPeers(): Promise<number> {
    return 0
  }
}

/** Fast settings for the bench. */
export const BENCH_SETTINGS: BossSettings = {
  ...DEFAULT_BOSS_SETTINGS,
  reconcileIntervalMs: 50,
  inventoryTimeoutMs: 100,
  dispatchTimeoutMs: 200,
  runningWriteDelayMs: 0,
  unreachableGraceMs: 300,
}

export interface Bench {
  store: MemoryStore
  transport: FakeTransport
  registry: FakeRegistry
  /** Jobs announced as finished, in order. */
  finished: Job[]
  fenced: string[]
  stats: BossStatusReply[]
  /** A term of `epoch` over this bench. */
  term(
    epoch: number,
    over?: { settings?: Partial<BossSettings>; confirmLeadership?: boolean; isCurrent?: () => boolean },
  ): BossTerm
}

export function bench(...workers: FakeWorker[]): Bench {
  const store = new MemoryStore()
  const transport = new FakeTransport()
  const registry = new FakeRegistry()
  transport.add(...workers)
  for (const w of workers) registry.join(w)
  const b: Bench = {
    store,
    transport,
    registry,
    finished: [],
    fenced: [],
    stats: [],
    term(epoch, over = {}) {
      return new BossTerm({
        selfId: 'boss',
        epoch,
        since: new Date().toISOString(),
        isCurrent: over.isCurrent ?? (() => true),
        store,
        transport,
        registry: registry,
        addressOf: (id) => `w.${id}`,
        publishFinished: (job) => b.finished.push(job),
        publishStats: (s) => b.stats.push(s),
        onFenced: (reason) => b.fenced.push(reason),
        confirmLeadership: async () => over.confirmLeadership ?? false,
        settings: { ...BENCH_SETTINGS, ...over.settings },
        logger: silentLogger(),
      })
    },
  }
  return b
}
