/**
 * The worker side of a bosun process: takes dispatches from the boss (refusing any older than the
 * newest epoch it has seen), runs them on the executor, reports results through the outbox, answers
 * a new boss's inventory (so it adopts running work instead of re-running it) and aborts on cancel.
 */
import { errors, type Logger, type Transport } from '../../runner/index.js'
import type { Job, JobError } from '../jobs/model.js'
import {
  MSG,
  type AttemptOutcome,
  type AttemptResult,
  type CancelBody,
  type DispatchBody,
  type DispatchReply,
  type InventoryBody,
  type InventoryReply,
  type RefusalReason,
  type RunningAttempt,
  type WorkerStatusReply,
} from '../protocol.js'
import { ResultOutbox } from './result-outbox.js'

export type AbortReason = 'cancel' | 'timeout' | 'shutdown'

/** A message may be at most this many elections ahead of the epoch ZooKeeper has shown this worker (watch lag). */
export const MAX_EPOCH_LEAD = 1

/** What the agent needs from the function executor (a narrow interface; see worker/executor). */
export interface Executor {
  readonly capacity: number
  readonly functions: readonly string[]
  run(req: { jobId: string; attempt: number; fn: string; payload: unknown; timeoutMs: number }): {
    promise: Promise<{ ok: true; result: unknown } | { ok: false; error: JobError }>
    abort(reason: AbortReason): void
  }
}

interface RunningJob extends RunningAttempt {
  abort(reason: AbortReason): void
  done: Promise<void>
  handBack: boolean
}

export interface WorkerAgentDeps {
  id: string
  transport: Transport
  executor: Executor
  /** Address of the current boss (cached lookup), or undefined. */
  bossAddress(): Promise<string | undefined>
  logger: Logger
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x)
}

function validEpoch(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
}

export class WorkerAgent {
  private maxEpoch = 0
  /** Newest boss epoch ZooKeeper has shown us (election watches): the only source we trust blindly. */
  private zkEpoch = 0
  private readonly running = new Map<string, RunningJob>()
  private readonly outbox: ResultOutbox
  private accepting = false
  private readonly log: Logger

  constructor(private readonly deps: WorkerAgentDeps) {
    this.log = deps.logger
    this.outbox = new ResultOutbox({
      bossAddress: deps.bossAddress,
      request: (address, type, body, timeoutMs) => deps.transport.request(address, type, body, { timeoutMs }),
      logger: deps.logger,
    })
  }

  /** Register message handlers. Call once. */
  start(): void {
    const t = this.deps.transport
    t.handle(MSG.dispatch, (body: unknown) => this.onDispatch(body))
    t.handle(MSG.cancel, (body: unknown) => this.onCancel(body))
    t.handle(MSG.inventory, (body: unknown) => this.onInventory(body))
    t.handle(MSG.status, () => this.status())
  }

  /** Start or stop taking new jobs (stops while this process is the boss or draining). */
  setAccepting(accepting: boolean): void {
    this.accepting = accepting
  }

  get runningCount(): number {
    return this.running.size
  }

  get newestEpoch(): number {
    return this.maxEpoch
  }

  /** Learn of a newer boss epoch (e.g. from whereisGlobal); later dispatches older than it are refused. */
  observeEpoch(epoch: number): void {
    if (epoch > this.zkEpoch) this.zkEpoch = epoch
    if (epoch > this.maxEpoch) this.maxEpoch = epoch
  }

  /**
   * An epoch carried by a message, checked before it is believed: older than the newest seen → stale;
   * more than one election ahead of what ZooKeeper has shown us → unknown (forged or garbage — it must
   * not raise the fence, or one bad message would lock out the real boss). Returns the verdict.
   */
  private checkEpoch(epoch: number): 'ok' | 'stale' | 'unknown' {
    if (epoch < this.maxEpoch) return 'stale'
    if (epoch > this.zkEpoch + MAX_EPOCH_LEAD) return 'unknown'
    this.maxEpoch = epoch
    return 'ok'
  }

  /** A new boss was elected: deliver pending results to it now. */
  bossChanged(): void {
    this.outbox.kick()
  }

  status(): WorkerStatusReply {
    return { id: this.deps.id, running: this.running.size, capacity: this.deps.executor.capacity, functions: [...this.deps.executor.functions], draining: !this.accepting }
  }

  /**
   * SIGTERM: stop taking work, let running jobs finish for up to `graceMs`, then hand back the rest
   * (aborted, reported as handed back so the boss requeues them without counting a failure), and
   * wait until the boss has acknowledged every result or `deadline` passes.
   */
  async drain(graceMs: number, flushMs: number): Promise<void> {
    this.accepting = false
    const all = Promise.all([...this.running.values()].map((r) => r.done))
    const finished = await Promise.race([all.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), graceMs).unref())])
    if (!finished) {
      for (const job of this.running.values()) {
        job.handBack = true
        job.abort('shutdown')
      }
      await Promise.race([all, new Promise((r) => setTimeout(r, 1500).unref())])
    }
    await this.outbox.drained(flushMs)
  }

  close(): void {
    this.outbox.close()
  }

  private refuseAll(jobs: unknown[], reason: RefusalReason): DispatchReply {
    return { answers: jobs.map((j) => ({ id: isObject(j) && typeof j.id === 'string' ? j.id : '', accepted: false as const, reason })) }
  }

  private onDispatch(body: unknown): DispatchReply {
    if (!isObject(body) || !validEpoch(body.epoch) || !Array.isArray(body.jobs)) throw errors.BAD_MESSAGE('dispatch needs { epoch, jobs[] }')
    const { epoch, jobs } = body as unknown as DispatchBody
    const verdict = this.checkEpoch(epoch)
    if (verdict !== 'ok') {
      this.log.warn({ epoch, newest: this.maxEpoch, zkEpoch: this.zkEpoch }, verdict === 'stale' ? 'refused a dispatch from a stale boss' : 'refused a dispatch with an epoch ZooKeeper has not shown')
      return this.refuseAll(jobs, verdict === 'stale' ? 'stale-epoch' : 'unknown-epoch')
    }
    const answers: DispatchReply['answers'] = []
    for (const job of jobs) {
      if (!isObject(job) || typeof job.id !== 'string' || typeof job.function !== 'string' || typeof job.attempts !== 'number') {
        answers.push({ id: isObject(job) && typeof job.id === 'string' ? job.id : '', accepted: false, reason: 'unknown-function' })
        continue
      }
      answers.push(this.accept(job as unknown as Job, epoch))
    }
    return { answers }
  }

  private accept(job: Job, epoch: number): DispatchReply['answers'][number] {
    // Idempotent: the same job already running or finished here is not started twice.
    if (this.running.has(job.id) || this.outbox.has(job.id)) {
      if (this.outbox.has(job.id)) this.outbox.kick()
      return { id: job.id, accepted: true }
    }
    if (!this.accepting) return { id: job.id, accepted: false, reason: 'draining' }
    if (!this.deps.executor.functions.includes(job.function)) return { id: job.id, accepted: false, reason: 'unknown-function' }
    if (this.running.size >= this.deps.executor.capacity) return { id: job.id, accepted: false, reason: 'full' }
    this.startJob(job, epoch)
    return { id: job.id, accepted: true }
  }

  private startJob(job: Job, epoch: number): void {
    const attempt = job.attempts
    const startedAt = new Date().toISOString()
    const run = this.deps.executor.run({ jobId: job.id, attempt, fn: job.function, payload: job.payload, timeoutMs: job.timeoutMs })
    const entry: RunningJob = { jobId: job.id, attempt, epoch, startedAt, abort: run.abort, handBack: false, done: Promise.resolve() }
    entry.done = run.promise.then(
      (outcome) => this.finish(entry, outcome),
      (err: unknown) => this.finish(entry, { ok: false, error: { message: err instanceof Error ? err.message : String(err) } }),
    )
    this.running.set(job.id, entry)
  }

  private finish(entry: RunningJob, outcome: AttemptOutcome): void {
    this.running.delete(entry.jobId)
    const reported: AttemptOutcome = entry.handBack && !outcome.ok ? { ok: false, error: outcome.error, handedBack: true } : outcome
    const result: AttemptResult = {
      jobId: entry.jobId,
      attempt: entry.attempt,
      epoch: entry.epoch,
      worker: this.deps.id,
      startedAt: entry.startedAt,
      finishedAt: new Date().toISOString(),
      outcome: reported,
    }
    this.outbox.add(result)
  }

  private onCancel(body: unknown): { cancelled: boolean } {
    if (!isObject(body) || !validEpoch(body.epoch) || typeof body.jobId !== 'string') throw errors.BAD_MESSAGE('cancel needs { epoch, jobId }')
    const { epoch, jobId } = body as unknown as CancelBody
    if (this.checkEpoch(epoch) !== 'ok') return { cancelled: false }
    const job = this.running.get(jobId)
    if (!job) return { cancelled: false }
    job.abort('cancel')
    return { cancelled: true }
  }

  private onInventory(body: unknown): InventoryReply {
    if (!isObject(body) || !validEpoch(body.epoch)) throw errors.BAD_MESSAGE('inventory needs { epoch }')
    const { epoch } = body as unknown as InventoryBody
    const verdict = this.checkEpoch(epoch)
    if (verdict !== 'ok') throw errors.STALE_EPOCH(`inventory from epoch ${epoch} refused (${verdict}): newest seen ${this.maxEpoch}, ZooKeeper shows ${this.zkEpoch}`)
    const running = [...this.running.values()].map(({ jobId, attempt, epoch: e, startedAt }) => ({ jobId, attempt, epoch: e, startedAt }))
    return { worker: this.deps.id, running, results: this.outbox.list() }
  }
}
