/**
 * One term of office of the boss, from election to deposition: wires the parts (takeover, dispatch,
 * liveness, results, cancels) around one job table of unfinished jobs, the book of open batches and
 * one door (commit.ts), and answers what workers and the API send the boss. A term never outlives
 * its leadership: `stop()` is called the moment leadership is in doubt, every write in flight is
 * abandoned and all state is dropped.
 */
import { errors, type Logger } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import { parseResultsBody, WORKER_SERVICE, type BossStatusReply, type ResultsReply } from '../../jobs/protocol.js'
import { BatchBook } from './batch-book.js'
import { Cancels } from './cancels.js'
import { Checkpoints } from './checkpoints.js'
import { Redrives } from './redrives.js'
import { parseRetryJobsBody, type RetryJobsReply } from '../../jobs/retry-protocol.js'
import { Door } from './commit.js'
import { Dispatcher } from './dispatch.js'
import { FinalIndexer } from './final-indexer.js'
import { Fleet } from './fleet.js'
import { FlowGate } from './flow-gate.js'
import { FlowLimits } from './flow-limits.js'
import { RateLedger } from './rate-ledger.js'
import { JobTable, type Tracked } from './job-table.js'
import { Liveness } from './liveness.js'
import { ReadyQueue } from './ready-queue.js'
import { Results } from './results.js'
import { Takeover } from './takeover.js'
import type { TermContext, TermDeps, TermState } from './term-context.js'
import type { LiveJob, OpenBatch } from '../../jobs/streams/index.js'
import { Arrivals } from './arrivals.js'

export type { TermDeps, TermState } from './term-context.js'

/** How often the boss reports its load to the APIs (backpressure). */
const STATS_INTERVAL_MS = 250

export class BossTerm {
  private current: TermState = 'inventory'
  private readonly ctx: TermContext
  private readonly arrivals = new Arrivals()
  private readonly ending = new AbortController()
  private readonly dispatcher: Dispatcher
  private readonly liveness: Liveness
  private readonly takeover: Takeover
  private readonly results: Results
  private readonly cancels: Cancels
  private readonly redrives: Redrives
  private readonly checkpoints: Checkpoints
  private readonly limits: FlowLimits
  private stopWatch: (() => void) | undefined
  /** The final records after the DONE checkpoint were read; until then arriving batches wait in `early`. */
  private tailKnown = false
  private readonly early: OpenBatch[] = []
  private statsTimer: NodeJS.Timeout | undefined
  /** Jobs this term finalized, for its load reports (the dashboard's throughput). */
  private finished = 0
  private readonly log: Logger

  constructor(private readonly d: TermDeps) {
    this.log = d.logger.child({ epoch: d.epoch })
    const fleet = new Fleet(this.log, () => this.limits.refresh())
    const queue = new ReadyQueue()
    const gate = new FlowGate((fn, key) => {
      queue.unblock(fn, key ?? '')
      this.dispatcher.wake()
    })
    const signal = this.ending.signal
    const book = new BatchBook(
      d.store,
      d.epoch,
      this.log,
      {
        liveOf: (batch, index) => this.ctx.table.liveOf(batch, index, this.ctx.book.idOf(batch, index)),
        onFenced: (err, batch) =>
          void this.suspectFence(`store refused a write of batch ${batch}: ${(err as Error).message}`, batch),
        onMerged: (batch, done, decided) => this.merged(batch, done, decided),
      },
      signal,
      d.settings,
    )
    this.checkpoints = new Checkpoints({
      store: d.store,
      epoch: d.epoch,
      log: this.log,
      signal,
      intervalMs: d.settings.checkpointIntervalMs,
      acting: () => this.acting(),
      suspectFence: (reason) => this.suspectCheckpoint(reason),
    })
    const watermark = this.checkpoints.watermark
    const table = new JobTable(
      d.store,
      book,
      new FinalIndexer(d.store),
      watermark,
      d.epoch,
      this.log,
      signal,
      (t) => this.checkpoints.settled(t.job.id, t.job.run ?? 0),
      d.announceFinal,
    )
    const door = new Door({
      table,
      fleet,
      queue,
      gate,
      log: this.log,
      runningWriteDelayMs: d.settings.runningWriteDelayMs,
      publishFinished: (job, withRecord) => {
        this.finished++
        d.publishFinished(job, withRecord)
      },
      onFinal: (t) => this.finalDurable(t),
      wake: () => this.dispatcher.wake(),
      acting: () => this.acting(),
    })
    const rates = new RateLedger({
      port: d.rates,
      gate,
      epoch: d.epoch,
      log: this.log,
      forgedUnlessFenced: (reason) => this.forgedUnlessFenced(reason),
    })
    this.ctx = {
      deps: d,
      epoch: d.epoch,
      log: this.log,
      table,
      book,
      fleet,
      queue,
      gate,
      rates,
      door,
      state: () => this.current,
      acting: () => this.acting(),
      fenced: (reason) => this.fenced(reason),
      suspectFence: (reason, batch) => this.suspectFence(reason, batch),
    }
    this.dispatcher = new Dispatcher(this.ctx, { workerUnreachable: (id) => this.liveness.workerUnreachable(id) })
    this.liveness = new Liveness(this.ctx, {
      undispatch: (w, id) => this.dispatcher.undispatch(w, id),
      wake: () => this.dispatcher.wake(),
    })
    this.takeover = new Takeover(this.ctx, this.arrivals, this.liveness, this.checkpoints)
    this.results = new Results(this.ctx, this.arrivals)
    this.cancels = new Cancels(this.ctx, this.arrivals, (b) => this.batchArrived(b))
    this.redrives = new Redrives(this.ctx, watermark, signal)
    this.limits = new FlowLimits(gate, fleet, d.limits, this.log, (fn) => {
      queue.unblockAll(fn)
      this.dispatcher.wake()
    })
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
    let storeRead = false
    const loadDone = () => {
      loaded = true
      if (this.current === 'loading') this.loadComplete(t0)
    }
    // Open batches are read while the final records after the last DONE checkpoint are (a job among
    // those is final whatever its batch's state record says): batches wait until those are known.
    this.stopWatch = this.d.store.watchBatches(
      (b) => this.batchArrived(b),
      () => {
        storeRead = true
        if (this.tailKnown) loadDone()
      },
      (c) => this.ctx.book.closedFound(c),
    )
    const watched = this.checkpoints.load().then((tail) => {
      if (tail.finals > 0 || tail.reopened > 0) this.log.info(tail, 'final records after the DONE checkpoint read')
      if (this.stopped()) return
      const reopened = this.checkpoints.takeReopened()
      if (reopened.length > 0) void this.redrives.complete(reopened).catch(() => undefined)
      this.tailKnown = true
      for (const b of this.early.splice(0)) this.takeover.onBatch(b)
      if (storeRead) loadDone()
    })
    watched.catch(() => undefined) // only when the term ended first
    const workers = await this.d.registry.getCapable(WORKER_SERVICE)
    if (this.stopped()) return
    this.liveness.follow(workers)
    // Every stored limit is in force before the first dispatch (a failure to read them ends the term);
    // a rate-limited function waits for the stored rate windows too, the others do not.
    void this.ctx.rates.load(this.ending.signal, () => this.dispatcher.wake())
    const limitsRead = this.limits.start()
    limitsRead.catch(() => undefined) // awaited below, after the inventory
    await this.takeover.inventory()
    await limitsRead
    await watched.catch(() => undefined)
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
    this.d.onDispatching?.({
      takeoverMs: Date.now() - t0,
      adopted: f.adopted,
      requeued: f.requeued,
      ...(f.predecessorLastDispatch === undefined ? {} : { predecessorLastDispatch: f.predecessorLastDispatch }),
    })
    this.liveness.start()
    this.checkpoints.start()
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
    this.limits.stop()
    this.checkpoints.stop()
    this.dispatcher.stop()
    if (this.statsTimer) clearInterval(this.statsTimer)
    this.ending.abort('the boss term ended')
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
    return { acked: acked.filter((x): x is string => x !== undefined), epoch: this.d.epoch }
  }

  /** Retry jobs that ended (the API's POST /jobs/:id/retry and POST /jobs/retry). */
  async onRetry(body: unknown): Promise<RetryJobsReply> {
    const parsed = parseRetryJobsBody(body)
    if (this.current === 'stopped') throw errors.NOT_LEADER('boss term is not active')
    return { results: await this.redrives.retry(parsed) }
  }

  async onCancel(id: string): Promise<Job | null> {
    if (this.current === 'stopped') throw errors.NOT_LEADER('boss term is not active')
    return this.cancels.cancel(id)
  }

  status(): BossStatusReply {
    const { table, fleet } = this.ctx
    return {
      epoch: this.d.epoch,
      since: this.d.since,
      queued: table.count('queued'),
      running: table.count('running'),
      finished: this.finished,
      workers: fleet.runningCounts(),
      functions: this.ctx.gate.runningByFunction(),
    }
  }

  // ---- internals ----------------------------------------------------------------------------------

  /** An open batch from the store (or read for a cancel). */
  private batchArrived(b: OpenBatch): void {
    if (this.tailKnown) this.takeover.onBatch(b)
    else this.early.push(b)
  }

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
    const figures = { unfinished: f.unfinished, adopted: f.adopted, requeued: f.requeued, tookMs: Date.now() - t0 }
    this.log.info({ jobs: this.ctx.table.size, ...figures }, 'job store loaded')
    this.dispatcher.wake() // limited functions dispatch from now on
  }

  /** A final record is durable and announced: the job leaves the table; a batch all done closes. */
  private finalDurable(t: Tracked): void {
    this.ctx.table.delete(t.job.id)
    if (this.ctx.book.complete(t.batch)) void this.ctx.book.close(t.batch).catch(() => undefined)
  }

  /** A previous boss recorded jobs of `batch` after this term read it (a lost write race): take them. */
  private merged(batch: string, done: number[], decided: Array<[number, LiveJob]>): void {
    for (const i of done) {
      const t = this.ctx.table.get(this.ctx.book.idOf(batch, i))
      if (!t || t.batch !== batch || t.index !== i) continue
      // Its final record is durable (a predecessor wrote it): drop the job without running it again.
      this.ctx.door.forget(t)
      this.ctx.table.delete(t.job.id)
    }
    for (const [i, live] of decided) {
      const t = this.ctx.table.get(this.ctx.book.idOf(batch, i))
      if (t && t.batch === batch && t.index === i && t.phase !== 'final')
        void this.ctx.door.commit(t, { ...t.job, ...live, state: live.state }, 'background')
    }
    if (this.ctx.book.complete(batch)) void this.ctx.book.close(batch).catch(() => undefined)
  }

  /**
   * A batch's record carries a newer epoch than ours. Normally that means a newer boss exists (stop
   * at once); but if ZooKeeper confirms we still lead with our epoch, the record is forged or
   * corrupt: its batch is set aside for this term (logged), so one bad record cannot depose every
   * boss in turn.
   */
  private async suspectFence(reason: string, batch: string): Promise<void> {
    if (!(await this.forgedUnlessFenced(reason))) return
    this.log.error(
      { batch, reason },
      'a batch record claims an epoch no boss has had: ignoring the batch as forged or corrupt',
    )
    for (const id of this.ctx.book.ids(batch)) {
      const t = this.ctx.table.get(id)
      if (!t) continue
      this.ctx.door.forget(t)
      this.ctx.table.delete(id)
    }
  }

  /** The DONE checkpoint carries a newer epoch: true when ZooKeeper confirms we lead (it is forged), else stop. */
  private async suspectCheckpoint(reason: string): Promise<boolean> {
    if (!(await this.forgedUnlessFenced(reason))) return false
    this.log.error(
      { reason },
      'the DONE checkpoint claims an epoch no boss has had: overwriting it as forged or corrupt',
    )
    return true
  }

  /**
   * A record claims a newer epoch than ours: true when ZooKeeper confirms this term still leads (the
   * record is forged or corrupt); otherwise a newer boss exists and this term is stopped (false).
   */
  private async forgedUnlessFenced(reason: string): Promise<boolean> {
    if (this.current === 'stopped') return false
    const stillLeader = await this.d.confirmLeadership().catch(() => false)
    if (!stillLeader) this.fenced(reason)
    return stillLeader
  }

  private fenced(reason: string): void {
    if (this.current === 'stopped') return
    this.log.error({ reason }, 'fenced: a newer boss exists; stopping this term')
    this.stop()
    this.d.onFenced(reason)
  }
}
