/**
 * Worker liveness at the boss: the fleet follows the registry; a worker holding jobs whose ZooKeeper
 * registration vanished is asked on NATS before its jobs are requeued (guarantee 3: a killed process
 * has no subscription left — NATS answers "no responders" at once — a live one keeps its jobs); a
 * registered worker that stops answering on NATS is backed off and, once it has not answered for
 * `unreachableGraceMs`, its jobs are requeued. Reconcile asks every holder what it runs: dispatches
 * that never arrived are put back.
 */
import { errors, isBosunError, type RedispatchReason, type ServiceEntry } from '../../runner/index.js'
import { MSG, WORKER_SERVICE, parseInventoryReply, type InventoryReply } from '../../jobs/protocol.js'
import type { TermContext } from './term-context.js'
import { lostWorker } from './transitions.js'
import { mayHaveWorkerFinal } from './worker-finals.js'

/** What asking a node on NATS found: its whole inventory, no process there, or no answer in time. */
export type Probe = { kind: 'alive'; inventory: InventoryReply } | { kind: 'dead' } | { kind: 'silent' }

/** Dispatches younger than this are not judged by reconcile (the reply may still be on its way). */
const RECONCILE_MIN_AGE_MS = 1000
/** Most inventory pages read from one worker in one probe. */
const MAX_INVENTORY_PAGES = 50

/** Count running jobs put back in the queue and tell them as one `job.redispatched` (when a worker is named). */
export function tellRedispatched(
  ctx: TermContext,
  worker: string | undefined,
  jobs: number,
  reason: RedispatchReason,
): void {
  ctx.deps.metrics?.redispatched(reason, jobs)
  if (jobs > 0 && worker !== undefined) ctx.deps.onRedispatched?.(worker, jobs, reason)
}

export interface LivenessDeps {
  /** Put a dispatched job back (it never arrived). */
  undispatch(workerId: string, jobId: string): void
  wake(): void
}

export class Liveness {
  private readonly probing = new Set<string>()
  /** Registered workers that answered "no responders", since when. */
  private readonly unreachableSince = new Map<string, number>()
  private timer: NodeJS.Timeout | undefined
  private readonly onChange = (service: string, entries: ServiceEntry[]) => this.registryChanged(service, entries)
  private readonly onPeers = () => void this.settleLostNodes()

  constructor(
    private readonly ctx: TermContext,
    private readonly d: LivenessDeps,
  ) {}

  /** Follow the registry (also while taking over: a worker registering then must not be missed). */
  follow(entries: ServiceEntry[]): void {
    this.ctx.fleet.setWorkers(this.others(entries))
    this.ctx.deps.registry.on('change', this.onChange)
    this.ctx.deps.registry.on('peers', this.onPeers)
  }

  /** Start reconciling (the term is dispatching). */
  start(): void {
    this.timer = setInterval(() => void this.reconcile(), this.ctx.deps.settings.reconcileIntervalMs)
    this.timer.unref()
  }

  stop(): void {
    this.ctx.deps.registry.off('change', this.onChange)
    this.ctx.deps.registry.off('peers', this.onPeers)
    if (this.timer) clearInterval(this.timer)
  }

  /** Ask `nodeId` on NATS what it runs and which results it holds (every page). */
  async probe(nodeId: string): Promise<Probe> {
    const { ctx } = this
    const address = ctx.fleet.get(nodeId)?.address ?? ctx.deps.addressOf(nodeId)
    const opts = { timeoutMs: ctx.deps.settings.inventoryTimeoutMs, epoch: ctx.epoch }
    try {
      let inventory: InventoryReply | undefined
      for (let page = 0, after: string | undefined; page < MAX_INVENTORY_PAGES; page++) {
        const body = after === undefined ? { epoch: ctx.epoch } : { epoch: ctx.epoch, after }
        const reply = parseInventoryReply(await ctx.deps.transport.request(address, MSG.inventory, body, opts))
        inventory = inventory ? { ...inventory, held: [...inventory.held, ...reply.held] } : reply
        if (reply.next === undefined) break
        after = reply.next
      }
      this.unreachableSince.delete(nodeId)
      ctx.fleet.reachable(nodeId)
      return { kind: 'alive', inventory: inventory! }
    } catch (err) {
      if (isBosunError(err, errors.NO_RESPONDERS)) return { kind: 'dead' }
      if (isBosunError(err, errors.REMOTE) && err.details?.code === errors.STALE_EPOCH.code) {
        ctx.fenced(`worker ${nodeId} refused our inventory: it has seen a newer epoch`)
      }
      return { kind: 'silent' }
    }
  }

  /** A registered worker answered "no responders" to a dispatch. */
  workerUnreachable(workerId: string): void {
    if (!this.unreachableSince.has(workerId)) this.unreachableSince.set(workerId, Date.now())
  }

  /** Requeue every job `holder` runs (it is dead): cancelled ones end cancelled, nothing counts as a failure. */
  requeueAll(holder: string, why: string, reason: RedispatchReason): void {
    const { ctx } = this
    const jobs = ctx.fleet.jobsOn(holder)
    if (jobs.length > 0) ctx.log.warn({ worker: holder, jobs: jobs.length, why }, 'worker lost: requeueing its jobs')
    let requeued = 0
    for (const id of jobs) {
      const t = ctx.table.get(id)
      if (!t || t.phase !== 'running' || t.job.worker !== holder) {
        ctx.fleet.release(holder, id)
        continue
      }
      requeued++
      t.checkDone = mayHaveWorkerFinal(t) // it may have written the job's final before it was lost
      void ctx.door.commit(t, lostWorker(t.job, ++t.losses, new Date(), ctx.epoch), 'background')
    }
    tellRedispatched(ctx, holder, requeued, reason)
    this.unreachableSince.delete(holder)
  }

  private registryChanged(service: string, entries: ServiceEntry[]): void {
    if (this.ctx.state() === 'stopped' || service !== WORKER_SERVICE) return
    this.ctx.fleet.setWorkers(this.others(entries))
    this.d.wake()
  }

  /** Registrations of other processes (the boss's own may linger in the cache after it withdrew it). */
  private others(entries: ServiceEntry[]): ServiceEntry[] {
    return entries.filter((e) => e.id !== this.ctx.deps.selfId)
  }

  /** Holders whose node announcement is gone: dead unless they still answer on NATS. */
  private async settleLostNodes(): Promise<void> {
    const { ctx } = this
    if (!ctx.acting()) return
    const peers = new Set((await ctx.deps.registry.getPeers()).map((p) => p.id))
    if (!ctx.acting()) return
    const lost = ctx.fleet.holders().filter((h) => !peers.has(h) && !this.probing.has(h))
    await Promise.all(lost.map((h) => this.settleHolder(h)))
  }

  private async settleHolder(holder: string): Promise<void> {
    this.probing.add(holder)
    try {
      const probe = await this.probe(holder)
      if (!this.ctx.acting()) return
      if (probe.kind === 'dead')
        this.requeueAll(holder, 'no ZooKeeper registration and no NATS subscription', 'worker_died')
      else
        this.ctx.log.warn(
          { worker: holder, probe: probe.kind },
          'worker has no ZooKeeper registration but may be alive: it keeps its jobs',
        )
    } finally {
      this.probing.delete(holder)
    }
  }

  /** Ask each holder what it runs: dispatches that never arrived are put back; the dead lose their jobs. */
  private async reconcile(): Promise<void> {
    const { ctx } = this
    if (!ctx.acting()) return
    await this.settleLostNodes()
    const cutoff = Date.now() - RECONCILE_MIN_AGE_MS
    const grace = ctx.deps.settings.unreachableGraceMs
    await Promise.all(
      ctx.fleet.holders().map(async (holder) => {
        if (this.probing.has(holder)) return
        const candidates = ctx.fleet.jobsOn(holder).filter((id) => (ctx.table.get(id)?.dispatchedAt ?? 0) < cutoff)
        if (candidates.length === 0) return
        this.probing.add(holder)
        try {
          const probe = await this.probe(holder)
          if (!ctx.acting()) return
          if (probe.kind === 'dead') {
            const since = this.unreachableSince.get(holder) ?? Date.now()
            this.unreachableSince.set(holder, since)
            const registered = ctx.fleet.get(holder) !== undefined
            if (!registered || Date.now() - since >= grace)
              this.requeueAll(
                holder,
                registered ? `unreachable on NATS for ${grace} ms` : 'gone',
                registered ? 'worker_unreachable' : 'worker_died',
              )
            return
          }
          if (probe.kind === 'silent') return
          const known = new Set([
            ...probe.inventory.running.map((r) => r.jobId),
            ...probe.inventory.held.map((h) => h.jobId),
          ])
          const lost = candidates.filter((id) => !known.has(id))
          if (lost.length > 0)
            ctx.log.warn(
              { worker: holder, jobs: lost.slice(0, 20), count: lost.length },
              'reconcile: the worker neither runs nor holds these jobs; putting them back',
            )
          for (const id of lost) this.d.undispatch(holder, id)
          tellRedispatched(ctx, holder, lost.length, 'dispatch_lost')
        } finally {
          this.probing.delete(holder)
        }
      }),
    )
  }
}
