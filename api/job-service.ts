/**
 * JobService on the cluster: jobs are stored durably in the JetStream job store (the 202 promise),
 * the boss picks them up from there; reads come from the store, listing and cancel from the boss.
 * The boss is found with whereisGlobal('boss') — a cache hit, never a ZooKeeper round trip per request.
 * Every store call of a request shares one deadline (store-deadline.ts): a stalled store is a 503.
 */
import { errors, type Election, type LeaderInfo, type Logger, type Registry, type Transport } from '../runner/index.js'
import {
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_PRIORITY,
  DEFAULT_TIMEOUT_MS,
  isFinal,
  publicJob,
  type Job,
  type JobSpec,
} from '../jobs/model.js'
import { jobEventSubject } from '../runner/transport/index.js'
import {
  BOSS,
  MSG,
  WORKER_SERVICE,
  parseBossStatusReply,
  parseCancelJobReply,
  type CancelJobBody,
  parseListJobsReply,
  parseWorkerStatusReply,
  type BossStatusReply,
} from '../jobs/protocol.js'
import type { Backpressure } from './backpressure.js'
import type { ClusterView, HealthView, JobQuery, JobService, SubmitOptions, SubmitResult } from './service.js'
import { newJobId } from './job-ids.js'
import { StoreDeadline } from './store-deadline.js'

/** What the API needs from the job store (jobs/store.ts). */
export interface ApiStore {
  create(job: Job): Promise<{ job: Job; created: boolean }>
  createMany(jobs: Job[]): Promise<{ job: Job; created: boolean }[]>
  get(id: string): Promise<{ job: Job } | null>
  claimIdempotencyKey(key: string, jobId: string): Promise<string>
  scan(): AsyncIterable<{ job: Job }>
}

/**
 * Wait for one message on a subject (the job-finished event): its body, or undefined after `timeoutMs`;
 * `cancel` stops waiting.
 */
export interface EventWaiter {
  waitOnce(subject: string, timeoutMs: number): { promise: Promise<unknown>; cancel(): void }
}

export interface JobServiceDeps {
  cluster: string
  store: ApiStore
  registry: Registry
  election: Election
  transport: Transport
  events: EventWaiter
  /** How long a submit waits for a boss to be elected before answering 503. */
  noBossWaitMs: number
  /** Queue limit (429 past it); fed by the boss's load reports. */
  backpressure: Backpressure
  health(): HealthView
  logger: Logger
}

const STATUS_TIMEOUT_MS = 500
const REQUEST_TIMEOUT_MS = 5000

function toPublic(job: Job): Job {
  return publicJob(job) as Job
}

export class ClusterJobService implements JobService {
  constructor(private readonly d: JobServiceDeps) {}

  async submit(spec: JobSpec, opts: SubmitOptions): Promise<SubmitResult> {
    this.requireConnections()
    await this.requireBoss()
    await this.requireFunctions([spec.function])
    this.d.backpressure.admit(1)
    const store = new StoreDeadline()
    const waitMs = opts.waitMs ?? 0
    let id = newJobId()
    if (spec.idempotencyKey !== undefined) {
      id = await store.call(this.d.store.claimIdempotencyKey(spec.idempotencyKey, id), 'idempotency claim')
      const existing = await store.call(this.d.store.get(id), 'read of the job its idempotencyKey names')
      if (existing) return this.answer(existing.job, waitMs, store)
    }
    const job = this.newJob(id, spec)
    const waiter = waitMs > 0 ? this.d.events.waitOnce(jobEventSubject(this.d.cluster, id), waitMs) : undefined
    try {
      const { job: stored } = await store.call(this.d.store.create(job), 'create')
      if (!waiter) return { job: toPublic(stored), finished: isFinal(stored.state) }
      return await this.awaitFinish(stored, waiter.promise, store)
    } finally {
      waiter?.cancel()
    }
  }

  async submitBatch(specs: JobSpec[]): Promise<Job[]> {
    this.requireConnections()
    await this.requireBoss()
    await this.requireFunctions(specs.map((s) => s.function))
    this.d.backpressure.admit(specs.length)
    const store = new StoreDeadline()
    const jobs: Job[] = []
    for (const spec of specs) {
      let id = newJobId()
      if (spec.idempotencyKey !== undefined) {
        id = await store.call(this.d.store.claimIdempotencyKey(spec.idempotencyKey, id), 'idempotency claim')
      }
      jobs.push(this.newJob(id, spec))
    }
    const stored = await store.call(this.d.store.createMany(jobs), 'batch create')
    return stored.map((s) => toPublic(s.job))
  }

  async get(id: string): Promise<Job | null> {
    this.requireConnections(false)
    const found = await new StoreDeadline().call(this.d.store.get(id), 'read')
    return found ? toPublic(found.job) : null
  }

  async list(q: JobQuery): Promise<Job[]> {
    const boss = await this.d.election.whereisGlobal(BOSS)
    if (boss) {
      try {
        return parseListJobsReply(
          await this.d.transport.request(boss.address, MSG.listJobs, q, { timeoutMs: REQUEST_TIMEOUT_MS }),
        ).jobs.map(toPublic)
      } catch (err) {
        this.d.logger.warn({ err }, 'boss did not answer the listing; scanning the store')
      }
    }
    return this.scan(q)
  }

  async cancel(id: string): Promise<Job | null> {
    this.requireConnections()
    const boss = await this.requireBoss()
    try {
      const reply = parseCancelJobReply(
        await this.d.transport.request(boss.address, MSG.cancelJob, { id } satisfies CancelJobBody, {
          timeoutMs: REQUEST_TIMEOUT_MS,
        }),
      )
      return reply.job ? toPublic(reply.job) : null
    } catch (err) {
      throw errors.NO_BOSS('the boss did not answer; try again', { cause: err, retryAfterSeconds: 1 })
    }
  }

  async cluster(): Promise<ClusterView> {
    const [boss, workers] = await Promise.all([
      this.d.election.whereisGlobal(BOSS),
      this.d.registry.getCapable(WORKER_SERVICE),
    ])
    const bossCounts = boss ? await this.bossStatus(boss) : undefined
    const views = await Promise.all(
      workers.map(async (w) => {
        const meta = w.meta as { functions?: unknown; capacity?: unknown }
        let running = bossCounts?.workers[w.id] ?? 0
        try {
          running = parseWorkerStatusReply(
            await this.d.transport.request(w.address, MSG.workerStatus, {}, { timeoutMs: STATUS_TIMEOUT_MS }),
          ).running
        } catch {
          /* keep the boss's count */
        }
        return {
          id: w.id,
          host: w.host,
          pid: w.pid,
          functions: Array.isArray(meta.functions)
            ? meta.functions.filter((f): f is string => typeof f === 'string')
            : [],
          capacity: typeof meta.capacity === 'number' ? meta.capacity : 0,
          running,
        }
      }),
    )
    return {
      boss: boss ? { id: boss.id, host: boss.host, pid: boss.pid, epoch: boss.epoch, since: boss.since } : null,
      workers: views.sort((a, b) => a.id.localeCompare(b.id)),
    }
  }

  health(): HealthView {
    return this.d.health()
  }

  // ---- internals ----------------------------------------------------------------------------------

  private newJob(id: string, spec: JobSpec): Job {
    const now = new Date()
    const job: Job = {
      id,
      function: spec.function,
      state: 'queued',
      attempts: 0,
      maxAttempts: spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
      payload: spec.payload ?? null,
      priority: spec.priority ?? DEFAULT_PRIORITY,
      timeoutMs: spec.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      createdAt: now.toISOString(),
      epoch: 0,
    }
    if (spec.idempotencyKey !== undefined) job.idempotencyKey = spec.idempotencyKey
    if (spec.delayMs !== undefined && spec.delayMs > 0) job.runAt = new Date(now.getTime() + spec.delayMs).toISOString()
    return job
  }

  /** An existing job (same idempotencyKey): as it is, or after waiting up to `waitMs` for it to end. */
  private async answer(job: Job, waitMs: number, store: StoreDeadline): Promise<SubmitResult> {
    if (waitMs <= 0 || isFinal(job.state)) return { job: toPublic(job), finished: isFinal(job.state) }
    const waiter = this.d.events.waitOnce(jobEventSubject(this.d.cluster, job.id), waitMs)
    try {
      // Re-read after subscribing: it may have finished in between. The job is stored: a read that
      // misses the deadline answers with what is known (202) rather than a 503.
      const again = await store.callOr(this.d.store.get(job.id), 'read', null)
      if (again && isFinal(again.job.state)) return { job: toPublic(again.job), finished: true }
      return await this.awaitFinish(again?.job ?? job, waiter.promise, store)
    } finally {
      waiter.cancel()
    }
  }

  private async awaitFinish(job: Job, event: Promise<unknown>, store: StoreDeadline): Promise<SubmitResult> {
    // The event is only a wake-up (anyone could publish on the subject): the store has the truth.
    await store.outside(event)
    const current = await store.callOr(this.d.store.get(job.id), 'read', null)
    const latest = current?.job ?? job
    return { job: toPublic(latest), finished: isFinal(latest.state) }
  }

  /**
   * Fail fast with 503 + Retry-After while this API has lost NATS (the job store) or ZooKeeper
   * (it cannot see the boss or the workers): never a slow answer, never a 202 it cannot stand behind.
   */
  private requireConnections(needZk = true): void {
    const h = this.d.health()
    if (!h.nats)
      throw errors.UNAVAILABLE('the API has lost its NATS connection; retry shortly', { retryAfterSeconds: 1 })
    if (needZk && !h.zk)
      throw errors.UNAVAILABLE('the API has lost its ZooKeeper connection; retry shortly', { retryAfterSeconds: 1 })
  }

  /** The boss, waiting briefly for an election; NO_BOSS (503, Retry-After) when none appears. */
  private async requireBoss(): Promise<LeaderInfo> {
    const boss = await this.d.election.whereisGlobal(BOSS)
    if (boss) return boss
    const elected = await new Promise<LeaderInfo | null>((resolve) => {
      const onLeader = (name: string, leader: LeaderInfo | null) => {
        if (name !== BOSS || !leader) return
        cleanup()
        resolve(leader)
      }
      const timer = setTimeout(() => {
        cleanup()
        resolve(null)
      }, this.d.noBossWaitMs)
      const cleanup = () => {
        clearTimeout(timer)
        this.d.election.off('leader', onLeader)
      }
      this.d.election.on('leader', onLeader)
    })
    if (elected) return elected
    const again = await this.d.election.whereisGlobal(BOSS)
    if (again) return again
    throw errors.NO_BOSS('no boss is elected; retry shortly', { retryAfterSeconds: 1 })
  }

  /**
   * Functions some live worker (the 'worker' service) advertises; UNKNOWN_FUNCTION (404) otherwise.
   * The boss runs no jobs: its node's functions do not count (a lone worker is the boss).
   */
  private async requireFunctions(names: string[]): Promise<void> {
    const known = new Set<string>()
    for (const w of await this.d.registry.getCapable(WORKER_SERVICE)) {
      const fns = (w.meta as { functions?: unknown }).functions
      if (Array.isArray(fns)) for (const f of fns) if (typeof f === 'string') known.add(f)
    }
    const index = names.findIndex((n) => !known.has(n))
    if (index === -1) return
    const where = names.length > 1 ? ` (jobs[${index}])` : ''
    const message = `no worker advertises the function ${JSON.stringify(names[index])}${where}`
    throw errors.UNKNOWN_FUNCTION(message, names.length > 1 ? { details: { index } } : {})
  }

  private async bossStatus(boss: LeaderInfo): Promise<BossStatusReply | undefined> {
    try {
      return parseBossStatusReply(
        await this.d.transport.request(boss.address, MSG.bossStatus, {}, { timeoutMs: STATUS_TIMEOUT_MS }),
      )
    } catch {
      return undefined
    }
  }

  private async scan(q: JobQuery): Promise<Job[]> {
    const out: Job[] = []
    for (const { job } of await new StoreDeadline().collect(this.d.store.scan(), 'listing scan')) {
      if (q.state !== undefined && job.state !== q.state) continue
      if (q.function !== undefined && job.function !== q.function) continue
      out.push(toPublic(job))
    }
    out.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    return out.slice(0, q.limit)
  }
}
