/**
 * One term of office of the boss, from election to deposition: wires the parts (takeover, dispatch,
 * liveness, results, cancels, retention) around one job table and one door (commit.ts), and answers
 * what workers and the API send the boss. A term never outlives its leadership: `stop()` is called
 * the moment leadership is in doubt, every write in flight is abandoned and all state is dropped.
 */
import { errors, type Logger } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import { parseListJobsBody, parseResultsBody, type BossStatusReply, type ResultsReply } from '../../jobs/protocol.js'
import { Arrivals } from './arrivals.js'
import { Cancels } from './cancels.js'
import { Door } from './commit.js'
import { Dispatcher } from './dispatch.js'
import { Fleet } from './fleet.js'
import { JobTable } from './job-table.js'
import { Liveness } from './liveness.js'
import { ReadyQueue } from './ready-queue.js'
import { Results } from './results.js'
import { Retention } from './retention.js'
import { Takeover } from './takeover.js'
import type { TermContext, TermDeps, TermState } from './term-context.js'
import { WORKER_SERVICE } from '../../jobs/protocol.js'

export type { TermDeps, TermState } from './term-context.js'

/** How often the boss reports its load to the APIs (backpressure). */
const STATS_INTERVAL_MS = 250

export class BossTerm {
  private current: TermState = 'inventory'
  private readonly ctx: TermContext
  private readonly arrivals = new Arrivals()
  private readonly dispatcher: Dispatcher
  private readonly liveness: Liveness
  private readonly takeover: Takeover
  private readonly results: Results
  private readonly cancels: Cancels
  private readonly retention: Retention
  private stopWatch: (() => void) | undefined
  private statsTimer: NodeJS.Timeout | undefined
  private readonly log: Logger

  constructor(private readonly d: TermDeps) {
    this.log = d.logger.child({ epoch: d.epoch })
    const fleet = new Fleet()
    const queue = new ReadyQueue()
    const table = new JobTable(d.store, d.epoch, this.log, {
      onFenced: (err, jobId) =>
        void this.suspectFence(`store refused a write of job ${jobId}: ${(err as Error).message}`, jobId),
      onDiscovered: (t, job) => void this.ctx.door.commit(t, job, 'none'),
    })
    const door = new Door({
      table,
      fleet,
      queue,
      log: this.log,
      runningWriteDelayMs: d.settings.runningWriteDelayMs,
      publishFinished: (job) => d.publishFinished(job),
      onFinal: (t) => this.retention.index(t),
      wake: () => this.dispatcher.wake(),
      acting: () => this.acting(),
    })
    this.ctx = {
      deps: d,
      epoch: d.epoch,
      log: this.log,
      table,
      fleet,
      queue,
      door,
      state: () => this.current,
      acting: () => this.acting(),
      fenced: (reason) => this.fenced(reason),
      suspectFence: (reason, jobId) => this.suspectFence(reason, jobId),
    }
    this.dispatcher = new Dispatcher(this.ctx, { workerUnreachable: (id) => this.liveness.workerUnreachable(id) })
    this.liveness = new Liveness(this.ctx, {
      undispatch: (w, id) => this.dispatcher.undispatch(w, id),
      wake: () => this.dispatcher.wake(),
    })
    this.retention = new Retention(this.ctx)
    this.takeover = new Takeover(this.ctx, this.arrivals, this.liveness, (t) => this.retention.index(t))
    this.results = new Results(this.ctx, this.arrivals)
    this.cancels = new Cancels(this.ctx, this.arrivals, (job, revision) => this.takeover.ingest(job, revision))
  }

  get epoch(): number {
    return this.d.epoch
  }

  get state(): TermState {
    return this.current
  }

  /** Loading or active: the term dispatches and answers. */
  get active(): boolean {
    return this.acting()
  }

  /**
   * Take over, then dispatch while the store is still loading: the inventory (what every live worker
   * runs and which results it holds) comes first, so each record can be classified the moment it
   * arrives — a new boss does not wait for the whole store before it dispatches. Resolves when the
   * term dispatches (or was stopped meanwhile).
   */
  async start(): Promise<void> {
    const t0 = Date.now()
    let loaded = false
    this.stopWatch = this.d.store.watchJobs(
      (e) => this.takeover.onWatch(e),
      () => {
        loaded = true
        if (this.current === 'loading') this.loadComplete(t0)
      },
    )
    const workers = await this.d.registry.getCapable(WORKER_SERVICE)
    if (this.stopped()) return
    this.liveness.follow(workers)
    await this.takeover.inventory()
    if (this.stopped()) return
    this.current = 'loading'
    this.takeover.classifyLoaded()
    const f = this.takeover.figures
    this.log.info(
      {
        loaded: this.ctx.table.size,
        adopted: f.adopted,
        requeued: f.requeued,
        silent: f.silent,
        tookMs: Date.now() - t0,
      },
      'boss term dispatching',
    )
    this.liveness.start()
    this.retention.start()
    this.statsTimer = setInterval(() => this.d.publishStats(this.status()), STATS_INTERVAL_MS)
    this.statsTimer.unref()
    this.d.publishStats(this.status())
    this.dispatcher.wake()
    if (loaded) this.loadComplete(t0)
  }

  stop(): void {
    if (this.current === 'stopped') return
    this.current = 'stopped'
    this.stopWatch?.()
    this.liveness.stop()
    this.retention.stop()
    this.dispatcher.stop()
    if (this.statsTimer) clearInterval(this.statsTimer)
    this.ctx.table.stop()
    this.ctx.queue.clear()
    this.arrivals.stop()
  }

  // ---- what workers and the API send the boss ----------------------------------------------------

  async onResults(body: unknown): Promise<ResultsReply> {
    if (this.current === 'stopped') throw errors.NOT_LEADER('boss term is not active')
    const { results, dropped } = parseResultsBody(body)
    if (dropped > 0) this.log.warn({ dropped }, 'malformed results dropped')
    const acked = await Promise.all(
      results.map((r) =>
        this.results.apply(r).then(
          (ok) => (ok ? r.jobId : undefined),
          () => undefined,
        ),
      ),
    )
    return { acked: acked.filter((x): x is string => x !== undefined) }
  }

  async onCancel(id: string): Promise<Job | null> {
    if (this.current === 'stopped') throw errors.NOT_LEADER('boss term is not active')
    return this.cancels.cancel(id)
  }

  onList(body: unknown): { jobs: Job[] } {
    if (this.current !== 'active') throw errors.NOT_LEADER('boss term has not read every job yet')
    const q = parseListJobsBody(body)
    const matches: Job[] = []
    for (const t of this.ctx.table.values()) {
      if (q.state !== undefined && t.job.state !== q.state) continue
      if (q.function !== undefined && t.job.function !== q.function) continue
      matches.push(t.job)
    }
    matches.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    return { jobs: matches.slice(0, q.limit) }
  }

  status(): BossStatusReply {
    const { table, fleet } = this.ctx
    return {
      epoch: this.d.epoch,
      since: this.d.since,
      queued: table.count('queued'),
      running: table.count('running'),
      workers: fleet.runningCounts(),
    }
  }

  // ---- internals ----------------------------------------------------------------------------------

  private stopped(): boolean {
    return this.current === 'stopped'
  }

  private acting(): boolean {
    return this.current === 'loading' || this.current === 'active'
  }

  private loadComplete(t0: number): void {
    this.takeover.loadDone()
    this.current = 'active'
    const f = this.takeover.figures
    this.log.info(
      {
        jobs: this.ctx.table.size,
        unfinished: f.unfinished,
        adopted: f.adopted,
        requeued: f.requeued,
        tookMs: Date.now() - t0,
      },
      'job store loaded',
    )
  }

  /**
   * A record carries a newer epoch than ours. Normally that means a newer boss exists (stop at once);
   * but if ZooKeeper confirms we still lead with our epoch, the record is forged or corrupt: it is set
   * aside for this term (logged), so one bad record cannot depose every boss in turn.
   */
  private async suspectFence(reason: string, jobId: string): Promise<void> {
    if (this.current === 'stopped') return
    const stillLeader = await this.d.confirmLeadership().catch(() => false)
    if (!stillLeader) return this.fenced(reason)
    this.log.error({ jobId, reason }, 'a job record claims an epoch no boss has had: ignoring it as forged or corrupt')
    const t = this.ctx.table.get(jobId)
    if (t) {
      this.ctx.door.forget(t)
      this.ctx.table.delete(jobId)
    }
  }

  private fenced(reason: string): void {
    if (this.current === 'stopped') return
    this.log.error({ reason }, 'fenced: a newer boss exists; stopping this term')
    this.stop()
    this.d.onFenced(reason)
  }
}
