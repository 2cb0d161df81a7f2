/**
 * The worker side of a bosun process: takes dispatches from the boss (refusing any older than the
 * newest epoch it has seen), runs them on the executor, reports results through the outbox, answers
 * a new boss's inventory (so it adopts running work instead of re-running it) and aborts on cancel.
 * Cut off from NATS for longer than `natsLostAbortMs`, it aborts what it runs (reported as handed
 * back): the boss requeues the jobs of a worker that does not answer for its unreachable grace, and
 * the old attempts must have stopped by then.
 */
import { type AgentMetrics, errors, type Logger, type Transport, type TransportStatus } from '../../runner/index.js'
import {
  MSG,
  parseAbortBody,
  parseDispatchBody,
  parseDispatchedJob,
  parseInventoryBody,
  type AttemptOutcome,
  type AttemptResult,
  type DispatchAnswer,
  type DispatchedJob,
  type DispatchReply,
  type InventoryReply,
  type RefusalReason,
  type WorkerStatusReply,
} from '../../jobs/protocol.js'
import { ResultOutbox } from './result-outbox.js'
import { inventoryReply } from './inventory-reply.js'
import { settlesWithin } from '../../runner/retry.js'
import { attemptState, type AbortReason, type Executor } from './executor-port.js'
import type { LiveRecorder } from './live-recorder.js'
import { DEFAULT_BOSS_SETTINGS } from '../boss/settings.js'
import type { Refusal } from '../refusal-report.js'
import { writeOwnFinal, type FinalWriter } from './own-final.js'
import { StartGate } from './start-gate.js'
import { EpochFence } from './epoch-fence.js'
import { notStarted, runningJob, type RunningJob } from './running-job.js'

export type { Executor } from './executor-port.js'

/**
 * Running jobs are aborted once NATS has been unreachable this long: half the boss's grace before it
 * requeues the jobs of a registered worker that answers "no responders" (worker/boss/settings.ts), so
 * the old attempts have stopped before the new ones start.
 */
export const DEFAULT_NATS_LOST_ABORT_MS = DEFAULT_BOSS_SETTINGS.unreachableGraceMs / 2

export interface WorkerAgentDeps {
  id: string
  transport: Transport
  executor: Executor
  /** Address of the current boss (cached lookup), or undefined. */
  bossAddress: () => Promise<string | undefined>
  /** The payload of a job dispatched without it (undefined: the job is not in the store). */
  fetchPayload?: (jobId: string) => Promise<unknown>
  logger: Logger
  /** Abort running jobs after NATS has been unreachable this long. @defaultValue {@link DEFAULT_NATS_LOST_ABORT_MS} */
  natsLostAbortMs?: number
  /** Prometheus metrics (METRICS_PORT); absent: nothing is counted. */
  metrics?: AgentMetrics | undefined
  /** A dispatch or inventory refused for its epoch (worker/refusal-report.ts tells the cluster). */
  onRefused?: (r: Refusal) => void
  /** Keeps jobs' progress and log lines (the LIVE stream); absent: they are not kept. */
  live?: LiveRecorder | undefined
  /** Writes the final records the boss lets this worker write (own-final.ts); absent: the boss writes all. */
  writeFinal?: FinalWriter | undefined
  /** Dispatched jobs held beyond the running slots, each started when a slot frees (start-gate.ts). @defaultValue 0 */
  prefetch?: number
}

export class WorkerAgent {
  private readonly fence = new EpochFence()
  private readonly running = new Map<string, RunningJob>()
  /** The last dispatch taken (its epoch, Date.now()): reported to the next boss in the inventory. */
  private lastDispatch: { epoch: number; at: number } | undefined
  private readonly outbox: ResultOutbox
  /** The executor's slots; `running` also holds the attempts waiting here for one. */
  private readonly gate: StartGate
  private accepting = false
  private readonly log: Logger
  /** Fires when NATS has been unreachable for natsLostAbortMs (armed on disconnect, cleared on reconnect). */
  private natsLostTimer: NodeJS.Timeout | undefined

  constructor(private readonly deps: WorkerAgentDeps) {
    this.log = deps.logger
    this.gate = new StartGate(deps.executor.capacity)
    this.outbox = new ResultOutbox({
      bossAddress: deps.bossAddress,
      request: (address, type, body, timeoutMs) => deps.transport.request(address, type, body, { timeoutMs }),
      logger: deps.logger,
      newestEpoch: () => this.fence.newest,
    })
  }

  /** Register message handlers. Call once. */
  start(): void {
    const t = this.deps.transport
    t.handle(MSG.dispatch, (body: unknown) => this.onDispatch(body))
    t.handle(MSG.abort, (body: unknown) => this.onAbort(body))
    t.handle(MSG.inventory, (body: unknown) => this.onInventory(body))
    t.handle(MSG.workerStatus, () => this.status())
    t.on('status', (s) => this.onTransportStatus(s))
  }

  /** Start or stop taking new jobs (stops while this process is the boss or draining). */
  setAccepting(accepting: boolean): void {
    this.accepting = accepting
  }

  /** Jobs it holds: running, waiting for a slot, or writing their final. */
  get runningCount(): number {
    return this.running.size
  }

  /** Jobs running on the executor now, and jobs waiting for a slot (prefetch). */
  get slotCounts(): { running: number; waiting: number } {
    return { running: this.gate.running, waiting: this.gate.waiting }
  }

  get newestEpoch(): number {
    return this.fence.newest
  }

  /** Learn of a newer boss epoch (e.g. from whereisGlobal); later dispatches older than it are refused. */
  observeEpoch(epoch: number): void {
    this.fence.observe(epoch)
  }

  /** A new boss was elected: deliver pending results to it now. */
  bossChanged(): void {
    this.outbox.kick()
  }

  status(): WorkerStatusReply {
    return {
      id: this.deps.id,
      running: this.gate.running,
      waiting: this.gate.waiting,
      capacity: this.deps.executor.capacity,
      functions: [...this.deps.executor.functions],
      draining: !this.accepting,
    }
  }

  /**
   * SIGTERM: stop taking work, let running jobs finish for up to `graceMs`, then hand back the rest
   * (aborted, reported as handed back so the boss requeues them without counting a failure) and wait
   * up to `handBackMs` for their reports, then up to `flushMs` until the boss has acknowledged every
   * result. Takes at most graceMs + handBackMs + flushMs (the caller's shutdown budget).
   */
  async drain(graceMs: number, flushMs: number, handBackMs = 1500): Promise<void> {
    this.accepting = false
    // Jobs still waiting for a slot go back at once: the boss requeues them for another worker.
    for (const job of this.running.values()) if (job.waiting) this.handBack(job)
    const all = Promise.all([...this.running.values()].map((r) => r.done))
    if (!(await settlesWithin(all, graceMs))) {
      for (const job of this.running.values()) this.handBack(job)
      await settlesWithin(all, handBackMs)
    }
    await this.outbox.drained(flushMs)
  }

  close(): void {
    this.clearNatsLost()
    this.outbox.close()
  }

  /** NATS down: arm the abort timer once; back (or closed for good): disarm it. */
  private onTransportStatus(status: TransportStatus): void {
    if (status === 'disconnected' || status === 'reconnecting') {
      if (this.natsLostTimer) return
      const ms = this.deps.natsLostAbortMs ?? DEFAULT_NATS_LOST_ABORT_MS
      this.natsLostTimer = setTimeout(() => this.abortCutOff(ms), ms)
      this.natsLostTimer.unref()
    } else this.clearNatsLost()
  }

  private clearNatsLost(): void {
    if (this.natsLostTimer) clearTimeout(this.natsLostTimer)
    this.natsLostTimer = undefined
  }

  /** Cut off from NATS too long: the boss will requeue these jobs; stop them first (handed back). */
  private abortCutOff(ms: number): void {
    this.natsLostTimer = undefined
    if (this.running.size === 0) return
    this.log.warn({ jobs: this.running.size, unreachableMs: ms }, 'NATS unreachable: handing back the running jobs')
    for (const job of this.running.values()) this.handBack(job)
  }

  private handBack(job: RunningJob): void {
    job.handBack = true
    job.abort('shutdown')
  }

  private refuseAll(jobs: unknown[], reason: RefusalReason): DispatchReply {
    const idOf = (j: unknown) =>
      typeof (j as { id?: unknown } | null)?.id === 'string' ? (j as { id: string }).id : ''
    return { answers: jobs.map((j) => ({ id: idOf(j), accepted: false as const, reason })) }
  }

  private onDispatch(body: unknown): DispatchReply {
    const { epoch, jobs } = parseDispatchBody(body)
    const verdict = this.fence.check(epoch)
    if (verdict !== 'ok') {
      const message =
        verdict === 'stale'
          ? 'refused a dispatch from a stale boss'
          : 'refused a dispatch with an epoch ZooKeeper has not shown'
      this.log.warn({ epoch, newest: this.fence.newest, zkEpoch: this.fence.zk }, message)
      if (verdict === 'stale') this.deps.metrics?.fencedWrite('dispatch')
      const reason = verdict === 'stale' ? 'stale-epoch' : 'unknown-epoch'
      this.deps.onRefused?.({ what: 'dispatch', epoch, newest: this.fence.newest, reason })
      return this.refuseAll(jobs, reason)
    }
    this.lastDispatch = { epoch, at: Date.now() }
    const answers: DispatchAnswer[] = []
    for (const raw of jobs) {
      const job = parseDispatchedJob(raw)
      if (job === undefined) answers.push(this.refuseAll([raw], 'malformed').answers[0]!)
      else answers.push(this.accept(job, epoch))
    }
    return { answers }
  }

  private accept(job: DispatchedJob, epoch: number): DispatchAnswer {
    // Idempotent: the same job already running or finished here is not started twice. A new boss
    // may number the attempt differently (it believed an earlier one lost): report under its number.
    // Another run of the job (retried after it ended) while this one's result is unacknowledged: later.
    const run = job.run ?? 0
    const other = this.running.get(job.id)?.run ?? (this.outbox.has(job.id) ? this.outbox.runOf(job.id) : run)
    if (other !== run) return { id: job.id, accepted: false, reason: 'full' }
    const running = this.running.get(job.id)
    if (running) {
      running.attempt = Math.max(running.attempt, job.attempts)
      running.epoch = Math.max(running.epoch, epoch)
      return { id: job.id, accepted: true }
    }
    if (this.outbox.has(job.id)) {
      this.outbox.renumber(job.id, job.attempts, epoch)
      this.outbox.kick()
      return { id: job.id, accepted: true }
    }
    if (!this.accepting) return { id: job.id, accepted: false, reason: 'draining' }
    if (!this.deps.executor.functions.includes(job.function))
      return { id: job.id, accepted: false, reason: 'unknown-function' }
    if (this.running.size >= this.deps.executor.capacity + (this.deps.prefetch ?? 0))
      return { id: job.id, accepted: false, reason: 'full' }
    this.startJob(job, epoch)
    return { id: job.id, accepted: true }
  }

  private startJob(job: DispatchedJob, epoch: number): void {
    const entry = runningJob(job, epoch, this.deps.live?.channel(job.id, job.run ?? 0, job.attempts))
    this.running.set(job.id, entry)
    entry.done = new Promise<void>((resolve) => {
      let withdrawnFor: AbortReason = 'cancel'
      const ticket = this.gate.take(
        () => resolve(this.begin(job, entry)),
        () => resolve(this.ended(entry, notStarted(entry, withdrawnFor))),
      )
      if (ticket.state === 'waiting')
        entry.abort = (reason) => {
          withdrawnFor = reason
          this.gate.withdraw(ticket)
        }
    })
  }

  /** The attempt took a slot: run it; the slot is free again when the function ends. */
  private begin(job: DispatchedJob, entry: RunningJob): Promise<void> {
    const now = Date.now()
    entry.waiting = false
    entry.startedMs = now
    entry.startedAt = new Date(now).toISOString()
    this.deps.metrics?.attemptStarted(job.function, job.id, job.attempts)
    return this.execute(job, entry).then(
      (outcome) => {
        this.gate.release()
        return this.ended(entry, outcome)
      },
      (err: unknown) => {
        this.gate.release()
        return this.ended(entry, { ok: false, error: { message: err instanceof Error ? err.message : String(err) } })
      },
    )
  }

  /** The attempt's last live write (only when its function reported anything) goes before its result. */
  private ended(entry: RunningJob, outcome: AttemptOutcome): void | Promise<void> {
    if (entry.live?.touched !== true) return this.finish(entry, outcome)
    return entry.live.finish().then(() => this.finish(entry, outcome))
  }

  /** Run the job on the executor (its payload read from the store first when it was not dispatched with it). */
  private async execute(job: DispatchedJob, entry: RunningJob): Promise<AttemptOutcome> {
    let payload = job.payload
    if (job.payloadRef) {
      let aborted: AbortReason | undefined
      entry.abort = (reason) => (aborted = reason)
      if (!this.deps.fetchPayload) throw errors.INTERNAL('this worker cannot read payloads from the store')
      payload = await this.deps.fetchPayload(job.id)
      if (payload === undefined) throw errors.JOB_NOT_FOUND(`job ${job.id} is not in the store`)
      if (aborted)
        return {
          ok: false,
          error: { message: `aborted (${aborted}) before it started`, code: errors.FUNCTION_CANCELLED.code },
        }
    }
    const run = this.deps.executor.run({
      jobId: job.id,
      attempt: entry.attempt,
      fn: job.function,
      payload,
      timeoutMs: job.timeoutMs,
      live: entry.live,
    })
    entry.abort = run.abort
    return run.promise
  }

  /**
   * Report the attempt. A success the boss let this worker write is written first (own-final.ts): the
   * job stays in `running` meanwhile, so an inventory never finds it neither running nor held.
   */
  private finish(entry: RunningJob, outcome: AttemptOutcome): void | Promise<void> {
    const reported: AttemptOutcome =
      entry.handBack && !outcome.ok ? { ok: false, error: outcome.error, handedBack: true } : outcome
    const now = Date.now()
    this.deps.metrics?.attemptFinished(entry.fn, attemptState(reported), (now - entry.startedMs) / 1000)
    const result: AttemptResult = {
      jobId: entry.jobId,
      attempt: entry.attempt,
      epoch: entry.epoch,
      worker: this.deps.id,
      startedAt: entry.startedAt,
      finishedAt: new Date(now).toISOString(),
      outcome: reported,
    }
    if (entry.run) result.run = entry.run
    if (entry.live?.hasProgress) result.progress = entry.live.progressValue
    const report = () => {
      // A new boss may have dispatched it again meanwhile, under its own attempt number: report under it.
      result.attempt = entry.attempt
      result.epoch = entry.epoch
      if (this.running.get(entry.jobId) === entry) this.running.delete(entry.jobId)
      this.outbox.add(result)
    }
    const write = this.deps.writeFinal
    if (!reported.ok || entry.final === undefined || write === undefined) return report()
    return writeOwnFinal(result, entry.final, write, this.log).then(report)
  }

  private onAbort(body: unknown): { aborted: boolean } {
    const { epoch, jobId } = parseAbortBody(body)
    if (this.fence.check(epoch) !== 'ok') return { aborted: false }
    const job = this.running.get(jobId)
    if (!job) return { aborted: false }
    job.final = undefined // a cancel was asked: the boss writes the outcome, as it would record it
    job.abort('cancel')
    return { aborted: true }
  }

  /** The last dispatch this worker took from a boss older than `epoch` (for the failover gap). */
  lastDispatchBefore(epoch: number): { epoch: number; at: number } | undefined {
    const last = this.lastDispatch
    return last && last.epoch < epoch ? { ...last } : undefined
  }

  /**
   * What this worker runs (always whole: at most its capacity) and which results it still holds
   * (job ids in order, one page at a time: a reply stays far below the NATS max payload).
   */
  private onInventory(body: unknown): InventoryReply {
    const { epoch, after } = parseInventoryBody(body)
    const verdict = this.fence.check(epoch)
    if (verdict !== 'ok') {
      const reason = verdict === 'stale' ? 'stale-epoch' : 'unknown-epoch'
      this.deps.onRefused?.({ what: 'inventory', epoch, newest: this.fence.newest, reason })
      throw errors.STALE_EPOCH(
        `inventory from epoch ${epoch} refused (${verdict}): ` +
          `newest seen ${this.fence.newest}, ZooKeeper shows ${this.fence.zk}`,
      )
    }
    return inventoryReply({
      worker: this.deps.id,
      running: this.running.values(),
      held: this.outbox.list(),
      after,
      lastDispatch: this.lastDispatch,
      epoch,
    })
  }
}
