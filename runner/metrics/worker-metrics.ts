/**
 * A worker process's Prometheus metrics (served on METRICS_PORT by metrics-server.ts): its election
 * state, the attempts its agent runs (per function: outcomes, run time, queue wait), its connections,
 * and — while it is the boss — queue depth, jobs re-dispatched off lost workers and fenced writes.
 * Handed down as an optional dependency (absent in unit tests: nothing is counted, nothing costs).
 * Counting is a cached child's inc/observe: no label object is built per job.
 */
import { Counter, Gauge, Histogram } from 'prom-client'
import { decodeTime } from 'ulid'
import { BoundedLabel, MAX_FUNCTION_LABELS } from './bounded-label.js'
import { BUCKETS, ProcessMetrics, type ProcessMetricsOptions } from './process-metrics.js'

/** How an attempt ended on the worker (`handed_back`: given back at shutdown or when cut off from NATS). */
export type AttemptState = 'succeeded' | 'failed' | 'timeout' | 'cancelled' | 'handed_back'
const ATTEMPT_STATES: readonly AttemptState[] = ['succeeded', 'failed', 'timeout', 'cancelled', 'handed_back']

/**
 * Why the boss put running jobs back in the queue: their worker's session ended and nothing answers at
 * its address (`worker_died`), it stayed unreachable on NATS past the grace (`worker_unreachable`), or
 * a dispatch never arrived (`dispatch_lost`).
 */
export type RedispatchReason = 'worker_died' | 'worker_unreachable' | 'dispatch_lost'

/** Where a stale epoch was refused: the job store refused the boss's write, or this worker a dispatch. */
export type FenceTarget = 'store' | 'dispatch'

/** What the worker agent reports (worker/agent/worker-agent.ts). */
export interface AgentMetrics {
  /** An attempt of `fn` started; a first attempt's queue wait is read off its job id (the batch ULID's time). */
  attemptStarted(fn: string, jobId: string, attempt: number): void
  /** An attempt of `fn` ended after `seconds`. */
  attemptFinished(fn: string, state: AttemptState, seconds: number): void
  /** A message from an older boss epoch was refused. */
  fencedWrite(target: FenceTarget): void
}

/** What a boss term reports (worker/boss/liveness.ts). */
export interface BossMetrics {
  redispatched(reason: RedispatchReason, jobs: number): void
}

/** The process's state, read at scrape time. */
export interface WorkerSources {
  /** This process is the acting boss. */
  isBoss(): boolean
  /** The newest boss epoch this process knows (its own while it is the boss). */
  bossEpoch(): number
  /** Jobs this worker runs now. */
  running(): number
  /** Jobs dispatched to this worker ahead of a free slot, waiting to start (README "Prefetch"). */
  waiting(): number
}

export interface WorkerMetricsOptions extends ProcessMetricsOptions {
  /** The functions this worker runs: the only values of the `function` label (at most 200). */
  functions: readonly string[]
}

interface FunctionSeries {
  finished: Record<AttemptState, Counter.Internal>
  duration: Histogram.Internal<'function'>
  wait: Histogram.Internal<'function'>
}

export class WorkerMetrics extends ProcessMetrics implements AgentMetrics, BossMetrics {
  private readonly finished: Counter<'function' | 'state'>
  private readonly duration: Histogram<'function'>
  private readonly wait: Histogram<'function'>
  private readonly redispatchedTotal: Counter<'reason'>
  private readonly fenced: Counter<'target'>
  private readonly functions: BoundedLabel
  private readonly byFunction = new Map<string, FunctionSeries>()
  private queued = 0

  constructor(opts: WorkerMetricsOptions) {
    super(opts)
    const registers = [this.registry]
    this.functions = new BoundedLabel({ max: MAX_FUNCTION_LABELS, allowed: opts.functions })
    this.finished = new Counter({
      name: 'bosun_jobs_finished_total',
      help: 'Job attempts this worker ended, per function and how they ended',
      labelNames: ['function', 'state'],
      registers,
    })
    this.duration = new Histogram({
      name: 'bosun_job_duration_seconds',
      help: "Job attempts' run time on this worker (start to finish), per function",
      labelNames: ['function'],
      buckets: BUCKETS.jobDuration,
      registers,
    })
    this.wait = new Histogram({
      name: 'bosun_job_queue_wait_seconds',
      help: 'Submission (createdAt) to the start of a first attempt, per function (includes delayMs)',
      labelNames: ['function'],
      buckets: BUCKETS.queueWait,
      registers,
    })
    this.redispatchedTotal = new Counter({
      name: 'bosun_redispatched_jobs_total',
      help: 'Running jobs this process, as the boss, put back in the queue, by reason',
      labelNames: ['reason'],
      registers,
    })
    this.fenced = new Counter({
      name: 'bosun_fenced_writes_total',
      help: 'Writes refused for a stale epoch: by the job store (this boss was deposed) or by this worker (dispatch)',
      labelNames: ['target'],
      registers,
    })
  }

  attemptStarted(fn: string, jobId: string, attempt: number): void {
    if (attempt !== 1) return
    let createdAt: number
    try {
      createdAt = decodeTime(jobId.slice(0, 26))
    } catch {
      return // not a ULID-based id: no submission time to measure from
    }
    this.series(fn).wait.observe(Math.max(0, Date.now() - createdAt) / 1000)
  }

  attemptFinished(fn: string, state: AttemptState, seconds: number): void {
    const s = this.series(fn)
    s.finished[state].inc()
    s.duration.observe(seconds)
  }

  fencedWrite(target: FenceTarget): void {
    this.fenced.labels(target).inc()
  }

  redispatched(reason: RedispatchReason, jobs: number): void {
    if (jobs > 0) this.redispatchedTotal.labels(reason).inc(jobs)
  }

  /** The boss's load report (published while this process is the boss). */
  bossLoad(stats: { queued: number }): void {
    this.queued = stats.queued
  }

  /** The cached children of `fn`'s label (at most 201: the cap and `other`). */
  private series(fn: string): FunctionSeries {
    const label = this.functions.value(fn)
    let s = this.byFunction.get(label)
    if (s !== undefined) return s
    const finished = {} as Record<AttemptState, Counter.Internal>
    for (const state of ATTEMPT_STATES) finished[state] = this.finished.labels(label, state)
    s = { finished, duration: this.duration.labels(label), wait: this.wait.labels(label) }
    this.byFunction.set(label, s)
    return s
  }

  /** Export the process's state (is boss, epoch, running, queued), read from `src` at scrape time. Call once. */
  track(src: WorkerSources): void {
    const registers = [this.registry]
    const queued = () => this.queued
    new Gauge({
      name: 'bosun_is_boss',
      help: '1 while this process is the acting boss, else 0',
      registers,
      collect() {
        this.set(src.isBoss() ? 1 : 0)
      },
    })
    new Gauge({
      name: 'bosun_boss_epoch',
      help: 'The newest boss epoch this process knows (its own while it is the boss)',
      registers,
      collect() {
        this.set(src.bossEpoch())
      },
    })
    new Gauge({
      name: 'bosun_jobs_running',
      help: 'Jobs this worker runs now',
      registers,
      collect() {
        this.set(src.running())
      },
    })
    new Gauge({
      name: 'bosun_jobs_waiting',
      help: 'Jobs dispatched to this worker ahead of a free slot, waiting to start (prefetch)',
      registers,
      collect() {
        this.set(src.waiting())
      },
    })
    new Gauge({
      name: 'bosun_jobs_queued',
      help: "Jobs waiting to run, from this process's last load report while it is the boss (0 otherwise)",
      registers,
      collect() {
        this.set(src.isBoss() ? queued() : 0)
      },
    })
  }
}
