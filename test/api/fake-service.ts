/**
 * An in-memory JobService for the HTTP layer's tests (the API's pure logic behind its narrow
 * interface; the real one is api/job-service.ts on ZooKeeper + NATS). It records every call, so
 * tests can assert that invalid input never reaches the service.
 */
import type { BulkRetryAnswer, BulkRetryQuery, RetryOptions } from '../../api/redrive.js'
import { errors } from '../../runner/errors.js'
import {
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_PRIORITY,
  DEFAULT_TIMEOUT_MS,
  isFinal,
  type Job,
  type JobSpec,
} from '../../jobs/model.js'
import type {
  ClusterLoadView,
  ClusterView,
  HealthView,
  JobLogs,
  JobPage,
  JobQuery,
  JobService,
  SubmitOptions,
  SubmitResult,
} from '../../api/service.js'

export interface FakeCalls {
  submit: { spec: JobSpec; opts: SubmitOptions }[]
  submitBatch: JobSpec[][]
  get: string[]
  list: JobQuery[]
  cancel: string[]
  cluster: number
}

export class FakeJobService implements JobService {
  readonly jobs = new Map<string, Job>()
  readonly calls: FakeCalls = { submit: [], submitBatch: [], get: [], list: [], cancel: [], cluster: 0 }
  /** Functions some worker advertises; others → UNKNOWN_FUNCTION. */
  functions = new Set(['echo', 'sleep', 'fail'])
  /** Jobs of these functions finish at once when the submit waits (echo succeeds with its payload). */
  finishesWhenWaited = new Set(['echo', 'fail'])
  healthState: HealthView = { zk: true, nats: true }
  /** When set, the next calls throw this (until cleared). */
  failWith: unknown = undefined
  clusterView: ClusterView = {
    boss: { id: 'node-a', host: 'h1', pid: 11, epoch: 3, since: '2024-01-01T00:00:00.000Z' },
    workers: [{ id: 'node-b', host: 'h2', pid: 12, functions: ['echo', 'sleep'], capacity: 4, running: 1, waiting: 0 }],
  }
  private seq = 0
  private readonly byKey = new Map<string, string>()

  private check(): void {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- a test sets whatever it wants thrown
    if (this.failWith !== undefined) throw this.failWith
  }

  private create(spec: JobSpec): Job {
    const key = spec.idempotencyKey
    if (key !== undefined) {
      const existing = this.byKey.get(key)
      if (existing !== undefined) return this.jobs.get(existing) as Job
    }
    this.seq += 1
    const id = `J${String(this.seq).padStart(8, '0')}`
    const job: Job = {
      id,
      function: spec.function,
      state: 'queued',
      attempts: 0,
      maxAttempts: spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      payload: spec.payload ?? null,
      priority: spec.priority ?? DEFAULT_PRIORITY,
      timeoutMs: spec.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      createdAt: new Date(Date.UTC(2024, 0, 1, 0, 0, this.seq)).toISOString(),
      epoch: 0,
      ...(key !== undefined ? { idempotencyKey: key } : {}),
    }
    this.jobs.set(id, job)
    if (key !== undefined) this.byKey.set(key, id)
    return job
  }

  private finish(job: Job): Job {
    const done: Job = { ...job, attempts: 1, worker: 'node-b', startedAt: job.createdAt, finishedAt: job.createdAt }
    if (job.function === 'fail') Object.assign(done, { state: 'failed', error: { message: 'boom' } })
    else Object.assign(done, { state: 'succeeded', result: job.payload })
    this.jobs.set(job.id, done)
    return done
  }

  async submit(spec: JobSpec, opts: SubmitOptions): Promise<SubmitResult> {
    this.calls.submit.push({ spec, opts })
    this.check()
    if (!this.functions.has(spec.function))
      throw errors.UNKNOWN_FUNCTION(`no worker advertises function "${spec.function}"`)
    const job = this.create(spec)
    if (opts.waitMs !== undefined && opts.waitMs > 0 && this.finishesWhenWaited.has(job.function)) {
      const done = isFinal(job.state) ? job : this.finish(job)
      return { job: done, finished: true }
    }
    return { job, finished: isFinal(job.state) && opts.waitMs !== undefined }
  }

  async submitBatch(specs: JobSpec[]): Promise<Job[]> {
    this.calls.submitBatch.push(specs)
    this.check()
    const unknown = specs.findIndex((s) => !this.functions.has(s.function))
    if (unknown !== -1) {
      throw errors.UNKNOWN_FUNCTION(`jobs[${unknown}]: no worker advertises function "${specs[unknown]?.function}"`, {
        details: { index: unknown },
      })
    }
    return specs.map((s) => this.create(s))
  }

  async logs(id: string): Promise<JobLogs | null> {
    this.check()
    return this.jobs.has(id) ? { jobId: id, lines: [], truncated: false } : null
  }

  /** The `waitMs` of each read that asked to wait (GET ?wait). */
  readonly readWaits: number[] = []

  async get(id: string, waitMs?: number): Promise<Job | null> {
    this.calls.get.push(id)
    if (waitMs) this.readWaits.push(waitMs)
    this.check()
    return this.jobs.get(id) ?? null
  }

  async list(q: JobQuery): Promise<JobPage> {
    this.calls.list.push(q)
    this.check()
    const jobs = [...this.jobs.values()]
      .filter(
        (j) =>
          (q.state === undefined || j.state === q.state) && (q.function === undefined || j.function === q.function),
      )
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0))
    const start = q.cursor !== undefined ? Number(q.cursor) : 0
    if (!Number.isInteger(start) || start < 0) throw errors.VALIDATION('malformed cursor')
    const page = jobs.slice(start, start + q.limit)
    return start + q.limit < jobs.length ? { jobs: page, next: String(start + q.limit) } : { jobs: page }
  }

  async cancel(id: string): Promise<Job | null> {
    this.calls.cancel.push(id)
    this.check()
    const job = this.jobs.get(id)
    if (job === undefined) return null
    if (isFinal(job.state)) return job
    const next: Job =
      job.state === 'queued'
        ? { ...job, state: 'cancelled', cancelRequested: true, finishedAt: new Date().toISOString() }
        : { ...job, cancelRequested: true }
    this.jobs.set(id, next)
    return next
  }

  /** Retry requests: (id or query, options). */
  readonly retries: Array<{ id?: string; query?: BulkRetryQuery; opts: RetryOptions }> = []

  async retry(id: string, opts: RetryOptions): Promise<Job | null> {
    this.retries.push({ id, opts })
    this.check()
    const job = this.jobs.get(id)
    if (job === undefined) return null
    if (job.state !== 'failed' && job.state !== 'cancelled')
      throw errors.JOB_NOT_RETRYABLE(`job ${id} is ${job.state}`, { details: { id, state: job.state } })
    const { error: _e, finishedAt: _f, result: _r, ...rest } = job
    const next: Job = { ...rest, state: 'queued', attempts: 0, run: (job.run ?? 0) + 1 }
    if (opts.maxAttempts !== undefined) next.maxAttempts = opts.maxAttempts
    this.jobs.set(id, next)
    return next
  }

  async retryMany(query: BulkRetryQuery): Promise<BulkRetryAnswer> {
    this.retries.push({ query, opts: {} })
    this.check()
    const ids = [...this.jobs.values()]
      .filter((j) => j.state === query.state && (query.function === undefined || j.function === query.function))
      .slice(0, query.limit)
      .map((j) => j.id)
    for (const id of ids) await this.retry(id, {})
    return { retried: ids.length, ids }
  }

  async cluster(): Promise<ClusterView> {
    this.calls.cluster += 1
    this.check()
    return this.clusterView
  }

  loadView: ClusterLoadView = { at: null, epoch: null, since: null, queued: 0, running: 0, finished: 0 }

  load(): ClusterLoadView {
    // like the real service: answers from memory, never throws
    return this.loadView
  }

  health(): HealthView {
    return this.healthState
  }

  /** Put a job straight into the store (for read/cancel tests). */
  seed(job: Partial<Job> & { function: string }): Job {
    const created = this.create({ function: job.function })
    const full: Job = { ...created, ...job, id: created.id }
    this.jobs.set(full.id, full)
    return full
  }
}
