/**
 * The boss test bench: in-memory stand-ins for what a boss term talks to — the job store (fenced
 * compare-and-set, a watch whose initial load the test can hold back, writes it can hold or fail:
 * memory-store.ts), the registry, the NATS transport and the workers behind it — so a case about the
 * boss's decisions runs in milliseconds. Anything about real ZooKeeper or NATS behaviour stays in real-server tests.
 */
import type { FunctionLimits } from '../../jobs/limits.js'
import { EventEmitter } from 'node:events'
import type { Test } from 'tap'
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
import type { BossStore } from '../../worker/boss/store-port.js'
import { BossTerm } from '../../worker/boss/term.js'
import { writeOwnFinal } from '../../worker/agent/own-final.js'
import { waitFor } from './wait.js'
import { newJob } from './fake-jobs.js'
import { MemoryLimits, MemoryRates } from './memory-limits.js'
import { MemoryStore } from './memory-store.js'

export { jobId, newJob } from './fake-jobs.js'
export { MemoryLimits, MemoryRates } from './memory-limits.js'
export { MemoryStore } from './memory-store.js'

/** A worker process as the boss sees it on NATS: takes dispatches, answers inventories and aborts. */
export class FakeWorker {
  readonly address: string
  /** Every job id it was asked to start, in order (a second start of an id is a run twice). */
  readonly starts: string[] = []
  readonly running = new Map<string, { attempt: number; epoch: number; startedAt: string; run?: number }>()
  /**
   * When the boss started each job it took, as the dispatched record says (`startedAt`, the time
   * the boss's flow gate counted): what rate-limit tests measure. `running`'s `startedAt` is when
   * this fake received it, later by however long the dispatch took.
   */
  readonly dispatchedAt = new Map<string, number>()
  /** Every dispatched job as it arrived (the message's fields, not the boss's record). */
  readonly received: Array<Record<string, unknown>> = []
  /** Finished attempts the boss has not acknowledged. */
  readonly held = new Map<string, AttemptResult>()
  readonly aborted: string[] = []
  /** How it answers: normally, not at all (timeout), or it has no subscription (no responders). */
  mode: 'ok' | 'silent' | 'gone' = 'ok'
  dispatchRequests = 0
  /** The limits its modules declare (advertised in its registration). */
  limits: Record<string, FunctionLimits> | undefined
  /** Jobs it takes beyond `capacity` (WORKER_PREFETCH, advertised when > 0). */
  prefetch = 0

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
      meta: {
        role: 'worker',
        functions: this.functions,
        capacity: this.capacity,
        ...(this.prefetch > 0 ? { prefetch: this.prefetch } : {}),
        ...(this.limits ? { limits: this.limits } : {}),
      },
      registeredAt: new Date().toISOString(),
    }
  }

  handle(type: string, body: any): unknown {
    switch (type) {
      case MSG.dispatch: {
        this.dispatchRequests++
        return {
          answers: (body.jobs as Job[]).map((j) => {
            this.received.push({ ...j })
            if (this.running.has(j.id) || this.held.has(j.id)) return { id: j.id, accepted: true }
            if (this.running.size >= this.capacity + this.prefetch) return { id: j.id, accepted: false, reason: 'full' }
            this.starts.push(j.id)
            this.dispatchedAt.set(j.id, Date.parse(j.startedAt!))
            this.running.set(j.id, {
              attempt: j.attempts,
              epoch: body.epoch,
              startedAt: new Date().toISOString(),
              ...(j.run ? { run: j.run } : {}),
            })
            return { id: j.id, accepted: true }
          }),
        }
      }
      case MSG.inventory: {
        const running = [...this.running].map(([jobId, r]) => ({
          jobId,
          attempt: r.attempt,
          epoch: r.epoch,
          startedAt: r.startedAt,
        }))
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
    if (r.run) result.run = r.run
    this.held.set(id, result)
    return result
  }

  /**
   * Finish a running job successfully the way a worker does when its dispatch carried `final`: write
   * the final record itself (worker/agent/own-final.ts) into `store`, then hold the result.
   */
  async finishWritingFinal(id: string, store: BossStore): Promise<AttemptResult> {
    const dispatched = this.received.findLast((j) => j.id === id)
    const basis = dispatched?.final as Job | undefined
    if (!basis) throw new Error(`${this.id} was not let write the final of ${id}`)
    const result = this.finish(id)
    await writeOwnFinal(
      result,
      { ...basis, payload: dispatched!.payload },
      async (job) => {
        const w = await store.writeFinal(job)
        return w.created ? w.seq : undefined
      },
      silentLogger(),
    )
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
  /** Ids of the finished jobs announced with their record (their submitter waits). */
  announcedWithRecord: string[]
  /** Final records announced as their write was sent, with the write's acknowledgement subject. */
  announcedFinals: Array<{ job: Job; ack: string }>
  fenced: string[]
  stats: BossStatusReply[]
  /** What the terms told as `job.redispatched`. */
  redispatched: { worker: string; jobs: number; reason: string }[]
  /** Operators' limit overrides, as the limits store would deliver them. */
  limits: MemoryLimits
  /** The stored rate windows. */
  rates: MemoryRates
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
    announcedWithRecord: [],
    announcedFinals: [],
    fenced: [],
    stats: [],
    redispatched: [],
    limits: new MemoryLimits(),
    rates: new MemoryRates(),
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
        publishFinished: (job, withRecord) => {
          b.finished.push(job)
          if (withRecord) b.announcedWithRecord.push(job.id)
        },
        announceFinal: (job, ack) => b.announcedFinals.push({ job, ack }),
        publishStats: (s) => b.stats.push(s),
        onFenced: (reason) => b.fenced.push(reason),
        onRedispatched: (worker, jobs, reason) => b.redispatched.push({ worker, jobs, reason }),
        confirmLeadership: async () => over.confirmLeadership ?? false,
        settings: { ...BENCH_SETTINGS, ...over.settings },
        limits: b.limits,
        rates: b.rates,
        logger: silentLogger(),
      })
    },
  }
  return b
}

/** One worker, one job, and a term of epoch 1 that has dispatched the job to it (stopped with `t`). */
export async function oneJobRunning(t: Test): Promise<{ w1: FakeWorker; b: Bench; job: Job; term: BossTerm }> {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(job.id), { what: 'running' })
  return { w1, b, job, term }
}
