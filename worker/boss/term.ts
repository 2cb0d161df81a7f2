/**
 * One term of office of the boss: from election to deposition. On start it loads every job from
 * the store, asks every live node what it runs and adopts that work (no re-run), then dispatches:
 * priority, then submission order, to the least-loaded worker advertising the function. Every
 * message and write carries the term's epoch. A term never outlives its leadership: `stop()` is
 * called the moment leadership is in doubt, and all in-memory state is dropped.
 */
import { errors, isBosunError, type Logger, type Registry, type ServiceEntry, type Transport } from '../../runner/index.js'
import { isFinal, publicJob, type Job } from '../../jobs/model.js'
import {
  MSG,
  WORKER_SERVICE,
  type AttemptResult,
  type BossStatusReply,
  type DispatchReply,
  type InventoryReply,
  parseInventoryReply,
  type ListJobsBody,
  type ResultsReply,
} from '../../jobs/protocol.js'
import { Fleet, type FleetWorker } from './fleet.js'
import { JobTable, phaseOf, type Tracked } from './job-table.js'
import { afterAttempt, cancelledWhileQueued, lostWorker, notStarted, started, undeliverable } from './outcomes.js'
import { ReadyQueue } from './ready-queue.js'
import type { BossSettings } from './settings.js'
import type { BossStore, WatchEntry } from './store-port.js'

export interface TermDeps {
  epoch: number
  since: string
  /** False the moment leadership is in doubt (e.g. no ZooKeeper round trip confirmed lately). */
  isCurrent(): boolean
  store: BossStore
  transport: Transport
  registry: Registry
  /** Tell waiting API requests a job finished (after the durable write). */
  publishFinished(job: Job): void
  /** Report load (queued/running) to the APIs for backpressure. */
  publishStats(stats: BossStatusReply): void
  /** The term found a newer boss (fenced write or record): give up leadership. */
  onFenced(reason: string): void
  /**
   * True when ZooKeeper confirms this process still leads with this term's epoch — then a record
   * claiming a newer epoch is forged or corrupt, not a sign of a newer boss.
   */
  confirmLeadership(): Promise<boolean>
  settings: BossSettings
  logger: Logger
}

type TermState = 'loading' | 'active' | 'stopped'

/** A running attempt a worker reported in the inventory. */
interface AdoptedAttempt {
  worker: string
  attempt: number
  startedAt: string
}

/** How often the boss reports its load to the APIs (backpressure). */
const STATS_INTERVAL_MS = 250

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function isAttemptResult(x: unknown): x is AttemptResult {
  return isObject(x) && typeof x.jobId === 'string' && typeof x.attempt === 'number' && typeof x.worker === 'string' && isObject(x.outcome) && typeof x.outcome.ok === 'boolean'
}

export class BossTerm {
  private state: TermState = 'loading'
  private readonly table: JobTable
  private readonly queue = new ReadyQueue()
  private readonly fleet = new Fleet()
  /** Finished jobs in finish order, for retention. */
  private readonly expiry: { id: string; at: number }[] = []
  private stopWatch: (() => void) | undefined
  /** From the inventory: running attempts and held results, applied as their records load. */
  private readonly adoptions = new Map<string, AdoptedAttempt>()
  private readonly heldResults = new Map<string, AttemptResult>()
  private silent = new Set<string>()
  /** The address each worker last registered with: one between two ZooKeeper sessions still answers there. */
  private readonly lastAddress = new Map<string, string>()
  /** Holders without a registration whose liveness is being asked over NATS. */
  private readonly probing = new Set<string>()
  private requeuedAtStart = 0
  /** Unfinished records found by the initial load (the queue this term took over). */
  private unfinishedAtLoad = 0
  /** Until the store's initial load is done (the term is active before that). */
  private initialLoadPending = true
  private pumpScheduled = false
  private delayTimer: NodeJS.Timeout | undefined
  private delayTimerAt = Infinity
  private reconcileTimer: NodeJS.Timeout | undefined
  private sweepTimer: NodeJS.Timeout | undefined
  private statsTimer: NodeJS.Timeout | undefined
  private readonly log: Logger
  private readonly onRegistryChange = (service: string, entries: ServiceEntry[]) => this.registryChanged(service, entries)
  private readonly onPeers = () => void this.requeueLostNodes()

  constructor(private readonly d: TermDeps) {
    this.log = d.logger.child({ epoch: d.epoch })
    this.table = new JobTable(d.store, d.epoch, this.log, (err, jobId) => void this.suspectFence(`store refused a write of job ${jobId}: ${(err as Error).message}`, jobId))
  }

  get epoch(): number {
    return this.d.epoch
  }

  get active(): boolean {
    return this.state === 'active'
  }

  /**
   * Adopt, then dispatch while the store is still loading: the inventory (what every live worker runs
   * and which results it holds) comes first, so each record can be classified the moment it arrives —
   * a new boss does not wait for the whole store (which holds finished jobs for JOB_RETENTION_MS)
   * before it dispatches. Resolves when the term is active (or was stopped meanwhile).
   */
  async start(): Promise<void> {
    const t0 = Date.now()
    const initialLoad = new Promise<void>((resolve) => {
      this.stopWatch = this.d.store.watchJobs((e) => this.onWatch(e), resolve)
    })
    const workers = await this.d.registry.getCapable(WORKER_SERVICE)
    if (this.stopped()) return
    this.updateWorkers(workers)
    this.d.registry.on('change', this.onRegistryChange)
    this.d.registry.on('peers', this.onPeers)
    const inventory = await this.inventoryRound()
    if (this.stopped()) return
    this.silent = inventory.silent
    for (const [id, a] of inventory.running) this.adoptions.set(id, a)
    for (const r of inventory.results) this.heldResults.set(r.jobId, r)
    this.state = 'active'
    for (const t of [...this.table.values()]) this.classify(t)
    this.log.info({ loaded: this.table.size, queued: this.queue.size, adopting: this.adoptions.size + this.fleet.holders().reduce((n, w) => n + this.fleet.load(w), 0), results: inventory.results.length, tookMs: Date.now() - t0 }, 'boss term active')
    this.reconcileTimer = setInterval(() => void this.reconcile(), this.d.settings.reconcileIntervalMs)
    this.reconcileTimer.unref()
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, this.d.settings.retentionMs / 10)))
    this.sweepTimer.unref()
    this.statsTimer = setInterval(() => this.d.publishStats(this.status()), STATS_INTERVAL_MS)
    this.statsTimer.unref()
    this.d.publishStats(this.status())
    this.schedulePump()
    void initialLoad.then(() => {
      this.initialLoadPending = false
      if (this.stopped()) return
      // Whatever the inventory named that the store does not hold was purged: nothing to adopt.
      this.adoptions.clear()
      this.heldResults.clear()
      this.log.info({ jobs: this.table.size, unfinished: this.unfinishedAtLoad, requeued: this.requeuedAtStart, tookMs: Date.now() - t0 }, 'job store loaded')
    })
  }

  /** Place a record loaded from the store, using what the inventory said about it. */
  private classify(t: Tracked): void {
    const id = t.job.id
    const adoption = this.adoptions.get(id)
    if (adoption) {
      this.adoptions.delete(id)
      if (t.phase !== 'final') this.adoptOn(t, adoption)
    }
    const held = this.heldResults.get(id)
    if (held) {
      // A result the previous boss never recorded: the job is done, apply it (no re-run).
      this.heldResults.delete(id)
      void this.applyResult(held).catch(() => undefined)
      return
    }
    if (adoption && t.phase !== 'final') return
    if (t.phase === 'queued') this.enqueue(t)
    else if (t.phase === 'running' && !this.isAssigned(t)) {
      const holder = t.job.worker
      if (holder !== undefined && this.silent.has(holder)) {
        this.fleet.assign(holder, id) // alive but did not answer: reconcile decides later
        t.dispatchedAt = Date.now()
      } else {
        // Its worker is gone, or does not run it: requeue without counting a failure.
        this.table.set(t, lostWorker(t.job, ++t.losses, new Date()))
        void this.persistQuietly(t)
        this.afterChange(t)
        this.requeuedAtStart++
      }
    } else if (t.phase === 'final') this.indexFinished(t)
  }

  private adoptOn(t: Tracked, a: AdoptedAttempt): void {
    this.table.set(t, { ...t.job, state: 'running', worker: a.worker, attempts: Math.max(t.job.attempts, a.attempt), startedAt: a.startedAt })
    this.fleet.assign(a.worker, t.job.id)
    t.dispatchedAt = Date.now()
  }

  stop(): void {
    if (this.state === 'stopped') return
    this.state = 'stopped'
    this.stopWatch?.()
    this.d.registry.off('change', this.onRegistryChange)
    this.d.registry.off('peers', this.onPeers)
    if (this.delayTimer) clearTimeout(this.delayTimer)
    if (this.reconcileTimer) clearInterval(this.reconcileTimer)
    if (this.sweepTimer) clearInterval(this.sweepTimer)
    if (this.statsTimer) clearInterval(this.statsTimer)
    this.table.stop()
    this.queue.clear()
  }

  // ---- messages from workers and the API -------------------------------------------------------

  async onResults(body: unknown): Promise<ResultsReply> {
    if (this.state !== 'active') throw errors.NOT_LEADER('boss term is not active')
    if (!isObject(body) || !Array.isArray(body.results)) throw errors.BAD_MESSAGE('results needs { results[] }')
    const valid = body.results.filter(isAttemptResult)
    const acked = await Promise.all(valid.map((r) => this.applyResult(r).then((ok) => (ok ? r.jobId : undefined), () => undefined)))
    return { acked: acked.filter((x): x is string => x !== undefined) }
  }

  async onCancel(id: string): Promise<Job | null> {
    if (this.state !== 'active') throw errors.NOT_LEADER('boss term is not active')
    const t = this.table.get(id)
    if (!t) return null
    if (t.phase === 'final') return t.job
    if (t.phase === 'queued') {
      this.table.set(t, cancelledWhileQueued(t.job, new Date()))
      await this.table.persist(t)
      this.finished(t)
      return t.job
    }
    this.table.set(t, { ...t.job, cancelRequested: true })
    void this.persistQuietly(t)
    const worker = t.job.worker !== undefined ? this.fleet.get(t.job.worker) : undefined
    const address = worker?.address ?? (await this.addressOf(t.job.worker))
    if (address) this.d.transport.send(address, MSG.abort, { epoch: this.d.epoch, jobId: id }, { epoch: this.d.epoch })
    return t.job
  }

  onList(body: unknown): { jobs: Job[] } {
    if (this.state !== 'active') throw errors.NOT_LEADER('boss term is not active')
    const q = (isObject(body) ? body : {}) as Partial<ListJobsBody>
    const limit = typeof q.limit === 'number' && q.limit > 0 ? Math.min(q.limit, 1000) : 100
    const matches: Job[] = []
    for (const t of this.table.values()) {
      if (q.state !== undefined && t.job.state !== q.state) continue
      if (q.function !== undefined && t.job.function !== q.function) continue
      matches.push(t.job)
    }
    matches.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    return { jobs: matches.slice(0, limit) }
  }

  status(): BossStatusReply {
    let running = 0
    for (const t of this.table.values()) if (t.phase === 'running') running++
    return { epoch: this.d.epoch, since: this.d.since, queued: this.queue.size, running, workers: this.fleet.runningCounts() }
  }

  // ---- loading ------------------------------------------------------------------------------------

  private onWatch(e: WatchEntry): void {
    if (this.state === 'stopped') return
    const t = this.table.get(e.id)
    if (e.job === null) {
      if (t) this.table.delete(e.id)
      return
    }
    if (!t) {
      const fresh = this.table.load(e.job, e.revision)
      if (this.initialLoadPending && fresh.phase !== 'final') this.unfinishedAtLoad++
      if (this.state === 'active') this.classify(fresh)
      return
    }
    if (e.revision <= t.revision) return
    if (e.job.epoch > this.d.epoch) {
      void this.suspectFence(`job ${e.id} was written by epoch ${e.job.epoch}`, e.id)
      return
    }
    this.table.observe(t, e.job, e.revision)
    if (e.job.epoch < this.d.epoch && isFinal(e.job.state) && t.phase !== 'final') {
      // A legitimate result recorded by the previous boss after we loaded: take it, do not re-run.
      this.releaseAssignment(t)
      this.table.set(t, e.job)
      this.finished(t)
    }
  }

  private async inventoryRound(): Promise<{ silent: Set<string>; results: AttemptResult[]; running: Map<string, AdoptedAttempt> }> {
    // Only worker processes run jobs (API nodes do not answer inventories).
    const peers = (await this.d.registry.getPeers()).filter((p) => (p.meta as { role?: unknown }).role === 'worker')
    const silent = new Set<string>()
    const results: AttemptResult[] = []
    const running = new Map<string, AdoptedAttempt>()
    await Promise.all(
      peers.map(async (p) => {
        try {
          const reply = await this.askInventory(p.address)
          for (const r of reply.running) running.set(r.jobId, { worker: p.id, attempt: r.attempt, startedAt: r.startedAt })
          // a held result arrives through the worker's outbox: until then the job is adopted on that worker
          for (const h of reply.held) running.set(h.jobId, { worker: p.id, attempt: h.attempt, startedAt: new Date().toISOString() })
        } catch (err) {
          silent.add(p.id)
          this.log.warn({ err, node: p.id }, 'node did not answer the inventory')
        }
      }),
    )
    return { silent, results, running }
  }

  // ---- dispatching --------------------------------------------------------------------------------

  private enqueue(t: Tracked): void {
    const runAt = t.job.runAt ? Date.parse(t.job.runAt) : 0
    t.token++
    this.queue.push({ id: t.job.id, fn: t.job.function, priority: t.job.priority, runAt: Number.isFinite(runAt) ? runAt : 0, token: t.token })
    this.schedulePump()
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.state !== 'active') return
    this.pumpScheduled = true
    setImmediate(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  private pump(): void {
    if (this.state !== 'active') return
    if (!this.d.isCurrent()) {
      // Leadership in doubt: dispatch nothing until it is confirmed (or the term is stopped).
      setTimeout(() => this.schedulePump(), 50).unref()
      return
    }
    const now = Date.now()
    const nextDue = this.queue.promoteDue(now)
    const batches = new Map<string, Job[]>()
    const isQueued = (e: { id: string; token: number }) => {
      const t = this.table.get(e.id)
      return t !== undefined && t.phase === 'queued' && t.token === e.token
    }
    for (const fn of this.queue.functionsWithWork()) {
      for (;;) {
        if (this.queue.peekReady(fn, isQueued) === undefined) break
        const worker = this.fleet.pick(fn)
        if (!worker) break
        const entry = this.queue.popReady(fn, isQueued)
        if (!entry) break
        const t = this.table.get(entry.id)!
        this.table.set(t, started(t.job, worker.id, new Date(now)))
        t.dispatchedAt = now
        this.fleet.assign(worker.id, t.job.id)
        this.scheduleRunningWrite(t)
        let batch = batches.get(worker.id)
        if (!batch) batches.set(worker.id, (batch = []))
        batch.push(t.job)
      }
    }
    for (const [workerId, jobs] of batches) void this.sendDispatch(workerId, jobs)
    if (nextDue !== undefined && nextDue < this.delayTimerAt) {
      if (this.delayTimer) clearTimeout(this.delayTimer)
      this.delayTimerAt = nextDue
      this.delayTimer = setTimeout(() => {
        this.delayTimer = undefined
        this.delayTimerAt = Infinity
        this.schedulePump()
      }, Math.max(0, nextDue - Date.now()))
    }
  }

  private scheduleRunningWrite(t: Tracked): void {
    if (t.runningTimer) clearTimeout(t.runningTimer)
    const attempt = t.job.attempts
    const write = () => {
      t.runningTimer = undefined
      if (this.state === 'active' && t.phase === 'running' && t.job.attempts === attempt) void this.persistQuietly(t)
    }
    if (this.d.settings.runningWriteDelayMs <= 0) write()
    else t.runningTimer = setTimeout(write, this.d.settings.runningWriteDelayMs)
  }

  private async sendDispatch(workerId: string, jobs: Job[]): Promise<void> {
    const worker = this.fleet.get(workerId)
    let reply: DispatchReply
    try {
      if (!worker) throw errors.NO_RESPONDERS('worker is gone')
      reply = (await this.d.transport.request(worker.address, MSG.dispatch, { epoch: this.d.epoch, jobs }, { timeoutMs: this.d.settings.dispatchTimeoutMs, epoch: this.d.epoch })) as DispatchReply
    } catch (err) {
      if (this.state !== 'active') return
      if (isBosunError(err, errors.BODY_TOO_LARGE)) return this.splitDispatch(workerId, jobs)
      // No responders: the dispatch was never received. A timeout is ambiguous: reconcile decides.
      const neverArrived = (err as { code?: string }).code === errors.NO_RESPONDERS.code
      this.log.warn({ err, worker: workerId, jobs: jobs.length, neverArrived }, 'dispatch failed')
      if (neverArrived) for (const j of jobs) this.undispatch(workerId, j.id)
      return
    }
    if (this.state !== 'active') return
    const answers = Array.isArray(reply?.answers) ? reply.answers : []
    const byId = new Map(answers.map((a) => [a.id, a]))
    for (const j of jobs) {
      const a = byId.get(j.id)
      if (a?.accepted) continue
      const reason = a && !a.accepted ? a.reason : 'unknown-function'
      if (reason === 'stale-epoch') return this.fenced(`worker ${workerId} has seen a newer epoch`)
      if ((reason === 'draining' || reason === 'unknown-epoch') && worker) this.pause(worker, reason === 'unknown-epoch' ? 100 : undefined)
      this.undispatch(workerId, j.id)
    }
  }

  /** Stop dispatching to a worker: until its registration changes, or for `ms` (its view of ZooKeeper lags ours). */
  private pause(worker: FleetWorker, ms?: number): void {
    worker.paused = true
    if (ms === undefined) return
    setTimeout(() => {
      worker.paused = false
      this.schedulePump()
    }, ms).unref()
  }

  /** A batch over the NATS max_payload was never sent: send it in halves; a single job that big fails. */
  private splitDispatch(workerId: string, jobs: Job[]): void {
    if (jobs.length > 1) {
      const half = Math.ceil(jobs.length / 2)
      void this.sendDispatch(workerId, jobs.slice(0, half))
      void this.sendDispatch(workerId, jobs.slice(half))
      return
    }
    const t = this.table.get(jobs[0]!.id)
    this.fleet.release(workerId, jobs[0]!.id)
    if (!t || t.phase !== 'running') return
    this.releaseAssignment(t)
    this.table.set(t, undeliverable(t.job, new Date()))
    void this.persistQuietly(t).then(() => this.finished(t))
  }

  private undispatch(workerId: string, jobId: string): void {
    const t = this.table.get(jobId)
    this.fleet.release(workerId, jobId)
    if (!t || t.phase !== 'running' || t.job.worker !== workerId) return
    if (t.runningTimer) clearTimeout(t.runningTimer)
    this.table.set(t, notStarted(t.job))
    if (t.storedVersion > 0 || t.stored?.state === 'running') void this.persistQuietly(t)
    this.enqueue(t)
  }

  // ---- results ------------------------------------------------------------------------------------

  /** Apply one finished attempt; resolves true once it is durable (or obsolete) so the worker may forget it. */
  private async applyResult(r: AttemptResult): Promise<boolean> {
    const t = this.table.get(r.jobId)
    if (!t || t.phase === 'final') return true
    const current = t.phase === 'running' && t.job.worker === r.worker && t.job.attempts === r.attempt
    if (!current && t.phase !== 'queued') return true // a stale attempt: the job runs elsewhere now
    this.releaseAssignment(t)
    const base = current ? t.job : { ...t.job, attempts: Math.max(t.job.attempts, r.attempt) }
    const next = r.outcome.ok === false && r.outcome.handedBack ? lostWorker(base, ++t.losses, new Date()) : afterAttempt(base, r, new Date())
    this.table.set(t, { ...next, worker: r.worker })
    await this.table.persist(t)
    this.afterChange(t)
    this.schedulePump()
    return true
  }

  private releaseAssignment(t: Tracked): void {
    if (t.runningTimer) {
      clearTimeout(t.runningTimer)
      t.runningTimer = undefined
    }
    if (t.job.worker !== undefined) this.fleet.release(t.job.worker, t.job.id)
  }

  private finished(t: Tracked): void {
    this.indexFinished(t)
    this.d.publishFinished(t.job)
    this.schedulePump()
  }

  private indexFinished(t: Tracked): void {
    const at = t.job.finishedAt ? Date.parse(t.job.finishedAt) : Date.now()
    this.expiry.push({ id: t.job.id, at: Number.isFinite(at) ? at : Date.now() })
  }

  // ---- workers coming and going -------------------------------------------------------------------

  private registryChanged(service: string, entries: ServiceEntry[]): void {
    // Also while loading: a worker that registers during the inventory round must not be missed
    // (the fleet would never learn of it, and jobs only it could run would wait forever).
    if (this.state === 'stopped' || service !== WORKER_SERVICE) return
    this.updateWorkers(entries)
    if (this.state === 'active') this.schedulePump()
  }

  /** The fleet follows the registry; addresses are remembered for workers that later drop out of it. */
  private updateWorkers(entries: ServiceEntry[]): void {
    this.fleet.setWorkers(entries)
    for (const e of entries) this.lastAddress.set(e.id, e.address)
  }

  /** Jobs held by nodes whose ZooKeeper session ended are requeued at once (guarantee 3). */
  private async requeueLostNodes(): Promise<void> {
    const peers = new Set((await this.d.registry.getPeers()).map((p: ServiceEntry) => p.id))
    if (this.state !== 'active') return
    const lost = this.fleet.holders().filter((holder) => !peers.has(holder) && !this.probing.has(holder))
    await Promise.all(lost.map((holder) => this.settleLostHolder(holder)))
  }

  /**
   * A worker holding jobs has no ZooKeeper registration any more. Dead — it does not answer on its
   * NATS address (a killed process's subscription is gone: NATS says "no responders" at once) — its
   * jobs are requeued. Alive — between two sessions, or cut off from ZooKeeper only — it keeps what it
   * runs (guarantee 3: a live worker's job is not run again); reconcile() sorts out the rest.
   */
  private async settleLostHolder(holder: string): Promise<void> {
    this.probing.add(holder)
    try {
      const address = this.lastAddress.get(holder)
      const alive = address !== undefined && (await this.answers(address))
      if (this.state !== 'active') return
      if (alive) {
        this.log.warn({ worker: holder, jobs: this.fleet.load(holder) }, 'worker has no ZooKeeper registration but answers on NATS: it keeps its jobs')
        return
      }
      const jobs = this.fleet.releaseAll(holder)
      this.log.warn({ worker: holder, jobs: jobs.length }, 'worker lost: requeueing its jobs')
      for (const id of jobs) {
        const t = this.table.get(id)
        if (!t || t.phase !== 'running' || t.job.worker !== holder) continue
        this.table.set(t, lostWorker(t.job, ++t.losses, new Date()))
        void this.persistQuietly(t)
        this.afterChange(t)
      }
    } finally {
      this.probing.delete(holder)
    }
  }

  /** What the worker at `address` runs and which results it holds (rejects when it does not answer). */
  private async askInventory(address: string): Promise<InventoryReply> {
    return parseInventoryReply(await this.d.transport.request(address, MSG.inventory, { epoch: this.d.epoch }, { timeoutMs: this.d.settings.inventoryTimeoutMs, epoch: this.d.epoch }))
  }

  private answers(address: string): Promise<boolean> {
    return this.askInventory(address).then(() => true, () => false)
  }

  /** Ask each worker holding jobs what it runs: dispatches that never arrived are requeued, unacked results applied. */
  private async reconcile(): Promise<void> {
    if (this.state !== 'active') return
    await this.requeueLostNodes()
    const peers = new Map((await this.d.registry.getPeers()).map((p: ServiceEntry) => [p.id, p.address]))
    const cutoff = Date.now() - 1000
    await Promise.all(
      this.fleet.holders().map(async (holder) => {
        const candidates = this.fleet.jobsOn(holder).filter((id) => (this.table.get(id)?.dispatchedAt ?? 0) < cutoff)
        const address = peers.get(holder) ?? this.lastAddress.get(holder)
        if (candidates.length === 0 || !address) return
        let reply: InventoryReply
        try {
          reply = await this.askInventory(address)
        } catch {
          return
        }
        if (this.state !== 'active') return
        const known = new Set([...reply.running.map((r) => r.jobId), ...reply.held.map((h) => h.jobId)])
        for (const id of candidates) if (!known.has(id)) this.undispatch(holder, id)
      }),
    )
  }

  private sweep(): void {
    const cutoff = Date.now() - this.d.settings.retentionMs
    this.expiry.sort((a, b) => a.at - b.at)
    while (this.expiry.length > 0 && this.expiry[0]!.at <= cutoff) {
      const { id } = this.expiry.shift()!
      const t = this.table.get(id)
      if (!t || t.phase !== 'final') continue
      this.table.delete(id)
      this.d.store.purge(id).catch((err: unknown) => this.log.warn({ err, jobId: id }, 'purge failed'))
    }
  }

  // ---- helpers ------------------------------------------------------------------------------------

  private stopped(): boolean {
    return this.state === 'stopped'
  }

  /** Queue or index a job after a transition made it queued or final. */
  private afterChange(t: Tracked): void {
    if (t.phase === 'queued') this.enqueue(t)
    else if (t.phase === 'final') this.finished(t)
  }

  private isAssigned(t: Tracked): boolean {
    return t.job.worker !== undefined && this.fleet.jobsOn(t.job.worker).includes(t.job.id)
  }

  private async addressOf(nodeId: string | undefined): Promise<string | undefined> {
    if (nodeId === undefined) return undefined
    return (await this.d.registry.getPeers()).find((p: ServiceEntry) => p.id === nodeId)?.address
  }

  private async persistQuietly(t: Tracked): Promise<void> {
    try {
      await this.table.persist(t)
    } catch (err) {
      this.log.debug({ err, jobId: t.job.id }, 'write abandoned')
    }
  }

  /**
   * A record carries a newer epoch than ours. Normally that means a newer boss exists (stop at once);
   * but if ZooKeeper confirms we still lead with our epoch, the record is forged or corrupt: it is set
   * aside for this term (logged), so one bad record cannot depose every boss in turn.
   */
  private async suspectFence(reason: string, jobId: string): Promise<void> {
    if (this.state === 'stopped') return
    let stillLeader = false
    try {
      stillLeader = await this.d.confirmLeadership()
    } catch {
      stillLeader = false
    }
    if (!stillLeader) return this.fenced(reason)
    this.log.error({ jobId, reason }, 'a job record claims an epoch no boss has had: ignoring it as forged or corrupt')
    const t = this.table.get(jobId)
    if (t) {
      this.releaseAssignment(t)
      this.table.delete(jobId)
    }
  }

  private fenced(reason: string): void {
    if (this.state === 'stopped') return
    this.log.error({ reason }, 'fenced: a newer boss exists; stopping this term')
    this.stop()
    this.d.onFenced(reason)
  }
}

export { phaseOf }
