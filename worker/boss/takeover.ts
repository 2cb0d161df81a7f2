/**
 * A new boss's takeover: before it dispatches anything it asks every live worker what it runs and
 * which results it holds (the inventory); then each record read from the store is classified as it
 * arrives — adopted where a worker runs it or holds its result (never dispatched again), queued,
 * or requeued when the worker its record names is gone. A record naming a worker that is not in
 * the registry is not requeued blindly: that worker is asked on NATS first (it may be alive between
 * two ZooKeeper sessions, or have lost its registration). Adopted records are written with this
 * term's epoch at once. A job whose final record stands after the last DONE checkpoint is loaded
 * as final, whatever its batch's state record says (checkpoints.ts). Running jobs put back in the
 * queue here are told and counted like the ones a term requeues later (`job.redispatched`,
 * `bosun_redispatched_jobs_total`): a worker that died with the previous boss is seen only here.
 */
import { assemble, runOf, type OpenBatch } from '../../jobs/streams/index.js'
import type { Arrivals } from './arrivals.js'
import type { Checkpoints } from './checkpoints.js'
import type { Tracked } from './job-table.js'
import { tellRedispatched, type Liveness, type Probe } from './liveness.js'
import type { RedispatchReason } from '../../runner/index.js'
import type { TermContext } from './term-context.js'
import { adopted, lostWorker, notStarted } from './transitions.js'
import { mayHaveWorkerFinal } from './worker-finals.js'

/** Payloads larger than this (JSON) are not kept by the boss; a worker reads them from the store. */
export const INLINE_PAYLOAD_BYTES = 64 * 1024

/** A running attempt (or a held result) a worker reported in the inventory. */
interface Adoption {
  worker: string
  attempt: number
  startedAt: string
}

export interface TakeoverFigures {
  /** Records read at election time that were not final. */
  unfinished: number
  adopted: number
  requeued: number
  /** Workers that did not answer the inventory in time. */
  silent: number
  /** The newest older boss's last dispatch as the workers saw it (its epoch, ms since 1970), when any saw one. */
  predecessorLastDispatch?: { epoch: number; at: number }
}

/** Of two last dispatches, the one of the newer boss, or the later of one boss's. */
export function laterDispatch(
  a: { epoch: number; at: number } | undefined,
  b: { epoch: number; at: number } | undefined,
): { epoch: number; at: number } | undefined {
  if (!a || !b) return a ?? b
  if (a.epoch !== b.epoch) return a.epoch > b.epoch ? a : b
  return a.at >= b.at ? a : b
}

export class Takeover {
  private readonly adoptions = new Map<string, Adoption>()
  /** Workers that answered the inventory (a record naming one of them that it does not run is requeued). */
  private readonly answered = new Set<string>()
  private readonly silent = new Set<string>()
  /** Probes of workers named by records but absent from the registry, one per worker. */
  private readonly probes = new Map<string, Promise<Probe>>()
  readonly figures: TakeoverFigures = { unfinished: 0, adopted: 0, requeued: 0, silent: 0 }
  /** Requeued jobs not told yet, per reason and worker: told together once the current turn ends. */
  private readonly untold = new Map<string, number>()

  constructor(
    private readonly ctx: TermContext,
    private readonly arrivals: Arrivals,
    private readonly liveness: Liveness,
    private readonly checkpoints: Checkpoints,
  ) {}

  /** Ask every live worker what it runs and which results it holds. */
  async inventory(): Promise<void> {
    const { ctx } = this
    // Only worker processes run jobs (API nodes do not answer inventories).
    const peers = (await ctx.deps.registry.getPeers()).filter((p) => (p.meta as { role?: unknown }).role === 'worker')
    await Promise.all(
      peers.map(async (p) => {
        const probe = await this.liveness.probe(p.id)
        if (probe.kind === 'alive') this.learn(p.id, probe)
        else if (probe.kind === 'silent') this.silent.add(p.id)
        if (probe.kind !== 'alive') ctx.log.warn({ node: p.id, probe: probe.kind }, 'node did not answer the inventory')
      }),
    )
    this.figures.silent = this.silent.size
  }

  /** Classify every record already read; from now on each record is classified as it arrives. */
  classifyLoaded(): void {
    this.arrivals.startClassifying()
    for (const t of [...this.ctx.table.values()]) this.classify(t)
  }

  /** The initial load is complete: what the inventory named that the store does not hold was purged. */
  loadDone(): void {
    this.adoptions.clear()
    this.checkpoints.loadDone()
    this.arrivals.allArrived()
  }

  /**
   * One open batch from the store (at takeover, or newly submitted; read again by a cancel — then
   * it is already known and nothing changes). Its unfinished jobs join the table and are classified.
   */
  onBatch(b: OpenBatch): void {
    const { ctx } = this
    if (ctx.state() === 'stopped' || ctx.book.get(b.batch)) return
    if (b.state && b.state.epoch > ctx.epoch) {
      void ctx.suspectFence(`batch ${b.batch} was written by epoch ${b.state.epoch}`, b.batch)
      return
    }
    const entry = ctx.book.open(b)
    const epoch = b.state?.epoch ?? 0
    // A large submission carries payloads the boss does not keep: workers read them from the store.
    const checkSizes = b.bytes > INLINE_PAYLOAD_BYTES
    const tail = this.checkpoints.tailSize > 0
    for (const i of entry.jobs) {
      if (entry.done.has(i)) {
        if (tail) this.checkpoints.settled(ctx.book.idOf(b.batch, i), runOf(b.submit, i))
        continue
      }
      // A final record its batch does not show (the previous boss died before the done mask): final.
      const standing = tail ? this.checkpoints.standing(ctx.book.idOf(b.batch, i), runOf(b.submit, i)) : undefined
      let job = standing?.job ?? assemble(b.submit, i, b.state?.jobs[String(i)], epoch)
      // A reopened run's payload stays with the boss: workers find submissions by job id, and its id
      // names the batch of its first run, not this one.
      const payloadRef =
        checkSizes && !entry.ids?.has(i) && JSON.stringify(job.payload ?? null).length > INLINE_PAYLOAD_BYTES
      if (payloadRef) job = { ...job, payload: null }
      const t = ctx.table.load(job, b.batch, i, payloadRef)
      // Stored already (and indexed when the tail was read): only the bookkeeping is left, no second write.
      if (standing) t.storedFinal = { seq: standing.seq, index: false }
      if (b.submit.jobs[i]?.waited === true) t.waited = true
      if (!this.arrivals.complete) {
        this.figures.unfinished++
        // A predecessor's worker may have written its final unheard, below the checkpoint: read it first.
        t.checkDone = mayHaveWorkerFinal(t)
      }
      if (ctx.state() !== 'inventory') this.classify(t)
    }
    // A batch whose jobs were all done but whose close was interrupted.
    if (ctx.book.complete(b.batch)) void ctx.book.close(b.batch).catch(() => undefined)
  }

  private learn(worker: string, probe: Extract<Probe, { kind: 'alive' }>): void {
    this.answered.add(worker)
    const last = probe.inventory.lastDispatch
    if (last && last.epoch < this.ctx.epoch)
      this.figures.predecessorLastDispatch = laterDispatch(this.figures.predecessorLastDispatch, {
        epoch: last.epoch,
        at: Date.parse(last.at),
      })
    for (const r of probe.inventory.running)
      this.adoptions.set(r.jobId, { worker, attempt: r.attempt, startedAt: r.startedAt })
    // A held result arrives through the worker's outbox: until then the job is adopted on that worker.
    const now = new Date().toISOString()
    for (const h of probe.inventory.held) this.adoptions.set(h.jobId, { worker, attempt: h.attempt, startedAt: now })
  }

  /** Place a record using what the inventory said about it. */
  private classify(t: Tracked): void {
    const { ctx } = this
    const id = t.job.id
    try {
      const adoption = this.adoptions.get(id)
      if (adoption) {
        this.adoptions.delete(id)
        if (t.phase !== 'final') return this.adopt(t, adoption)
      }
      // Decided by the previous boss (recorded in the batch's state) but not written yet: finish it.
      if (t.phase === 'final') return void ctx.door.commit(t, t.job, 'background')
      if (t.phase === 'queued') {
        const next = t.job.cancelRequested ? notStarted(t.job, new Date()) : t.job
        void ctx.door.commit(t, next, next === t.job ? 'none' : 'background')
        return
      }
      const holder = t.job.worker
      // Its worker answered the inventory without it: the dispatch or its start was lost.
      if (holder === undefined || this.answered.has(holder)) return this.requeue(t, 'dispatch_lost')
      if (this.silent.has(holder)) {
        // Alive but slow to answer: it keeps the job; reconcile asks again.
        void ctx.door.commit(t, t.job, 'none')
        return
      }
      this.askHolder(t, holder)
    } finally {
      this.arrivals.arrived(id)
    }
  }

  private adopt(t: Tracked, a: Adoption): void {
    this.figures.adopted++
    // Written at once with this term's epoch: a predecessor's late write of the record is then refused.
    void this.ctx.door.commit(t, adopted(t.job, a.worker, a.attempt, a.startedAt), 'background')
  }

  private requeue(t: Tracked, reason: RedispatchReason): void {
    this.figures.requeued++
    const worker = t.job.worker
    t.checkDone = mayHaveWorkerFinal(t)
    void this.ctx.door.commit(t, lostWorker(t.job, ++t.losses, new Date(), this.ctx.epoch), 'background')
    this.tell(worker, reason)
  }

  /** Count one requeued job; the jobs requeued in the same turn are told as one event per worker. */
  private tell(worker: string | undefined, reason: RedispatchReason): void {
    const key = `${reason} ${worker ?? ''}`
    const pending = this.untold.get(key)
    this.untold.set(key, (pending ?? 0) + 1)
    if (pending !== undefined) return
    setImmediate(() => {
      const jobs = this.untold.get(key) ?? 0
      this.untold.delete(key)
      if (this.ctx.acting()) tellRedispatched(this.ctx, worker, jobs, reason)
    })
  }

  /** The record names a worker absent from the registry: ask it on NATS before requeueing its job. */
  private askHolder(t: Tracked, holder: string): void {
    const { ctx } = this
    void ctx.door.commit(t, t.job, 'none') // assigned to it meanwhile: never dispatched twice
    let probe = this.probes.get(holder)
    if (!probe) this.probes.set(holder, (probe = this.liveness.probe(holder)))
    void probe.then((p) => {
      if (!ctx.acting() || t.phase !== 'running' || t.job.worker !== holder) return
      if (p.kind === 'silent') return // reconcile decides
      if (p.kind === 'alive') {
        this.learn(holder, p)
        const a = this.adoptions.get(t.job.id)
        if (a) {
          this.adoptions.delete(t.job.id)
          return this.adopt(t, a)
        }
      }
      this.requeue(t, p.kind === 'alive' ? 'dispatch_lost' : 'worker_died')
    })
  }
}
