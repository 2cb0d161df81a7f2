/**
 * JobService on the cluster: jobs are stored durably in the job store (jobs/streams/) before the
 * 202 — one batch message per request — and read back from it (get, list: never through the boss);
 * cancels go to the boss. The boss is found with whereisGlobal('boss') — a cache hit, never a
 * ZooKeeper round trip per request. Every store call of a request shares one deadline
 * (store-deadline.ts): a stalled store is a 503.
 */
import { errors, type Election, type LeaderInfo, type Logger, type Registry, type Transport } from '../runner/index.js'
import { isFinal, publicJob, type Job, type JobSpec } from '../jobs/model.js'
import {
  BOSS,
  MSG,
  WORKER_SERVICE,
  parseBossStatusReply,
  parseCancelJobReply,
  type CancelJobBody,
  parseWorkerStatusReply,
  type BossStatusReply,
} from '../jobs/protocol.js'
import { assemble, jobToSubmit, resolveClaim, type SubmittedJob } from '../jobs/streams/index.js'
import type { Backpressure } from './backpressure.js'
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
} from './service.js'
import { newBatchId } from '../jobs/job-ids.js'
import { StoreDeadline } from './store-deadline.js'
import {
  retryMatching,
  retryOne,
  type BulkRetryAnswer,
  type BulkRetryQuery,
  redrivePorts,
  type RedrivePorts,
  type RetryOptions,
} from './redrive.js'
import { checkCallbackUrls, withCallbackState, type ApiCallbacks } from './job-callbacks.js'
import { logsOf, withLiveProgress } from './job-live.js'
import type { ApiStore, EventWaiter } from './job-store-port.js'

export type { ApiStore, EventWaiter } from './job-store-port.js'

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
  /**
   * Completion callbacks: the hosts a callbackUrl may name (BOSUN_CALLBACK_ALLOW) and the delivery
   * states. Absent: no callbackUrl is accepted.
   */
  callbacks?: ApiCallbacks
  logger: Logger
}

const STATUS_TIMEOUT_MS = 500
const REQUEST_TIMEOUT_MS = 5000
/** Idempotency claims of one batch made at once. */
const PARALLEL_CLAIMS = 32

function toPublic(job: Job): Job {
  return publicJob(job) as Job
}

export class ClusterJobService implements JobService {
  constructor(private readonly d: JobServiceDeps) {}

  async submit(spec: JobSpec, opts: SubmitOptions): Promise<SubmitResult> {
    checkCallbackUrls([spec], this.d.callbacks, false)
    this.requireConnections()
    await this.requireBoss()
    await this.requireFunctions([spec.function])
    this.d.backpressure.admit(1)
    const store = new StoreDeadline()
    const waitMs = opts.waitMs ?? 0
    const createdAt = new Date()
    const sub = jobToSubmit(spec, createdAt)
    // The boss's finished notice then carries the final record: the answer needs no read of the store.
    if (waitMs > 0) sub.waited = true
    // Concurrent submits share one batch message (group commit); the id is known before it is written.
    const { id, stored } = this.d.store.commit(sub, spec.idempotencyKey, createdAt.toISOString())
    const waiter = waitMs > 0 ? this.d.events.waitOnce(id, waitMs) : undefined
    try {
      const holder = await store.call(stored, 'submit')
      if (holder) {
        waiter?.cancel()
        return await this.answer(toPublic(holder), waitMs, store)
      }
      const job = this.queued(id, sub, createdAt)
      if (!waiter) return { job, finished: false }
      return await this.awaitFinish(job, waiter.promise, store)
    } finally {
      waiter?.cancel()
    }
  }

  async submitBatch(specs: JobSpec[]): Promise<Job[]> {
    checkCallbackUrls(specs, this.d.callbacks, true)
    this.requireConnections()
    await this.requireBoss()
    await this.requireFunctions(specs.map((s) => s.function))
    this.d.backpressure.admit(specs.length)
    const store = new StoreDeadline()
    const createdAt = new Date()
    const subs = specs.map((spec) => jobToSubmit(spec, createdAt))
    const plan = this.d.store.plan(subs, newBatchId)
    // Jobs whose idempotencyKey another job holds are answered as that job (a hole in the batch);
    // a key repeated within the batch names its first job.
    const existing: Array<Job | null> = specs.map(() => null)
    const firstWithKey = new Map<string, number>()
    const keyed: number[] = []
    specs.forEach((s, i) => {
      if (s.idempotencyKey === undefined) return
      if (!firstWithKey.has(s.idempotencyKey)) {
        firstWithKey.set(s.idempotencyKey, i)
        keyed.push(i)
      }
    })
    try {
      for (let k = 0; k < keyed.length; k += PARALLEL_CLAIMS) {
        await Promise.all(
          keyed.slice(k, k + PARALLEL_CLAIMS).map(async (i) => {
            existing[i] = await this.claimed(specs[i]!.idempotencyKey!, plan.ids[i]!, store)
          }),
        )
      }
    } catch (err) {
      // Nothing was sent: claims that landed name jobs that never will be, and the retry may take them.
      this.d.store.abandon(plan.ids)
      throw err
    }
    const repeatOf = (i: number) => {
      const key = specs[i]!.idempotencyKey
      const first = key === undefined ? i : firstWithKey.get(key)!
      return first === i ? undefined : first
    }
    const fresh = subs.map((sub, i) => (existing[i] || repeatOf(i) !== undefined ? null : sub))
    await store.call(this.d.store.publish(plan, fresh, createdAt.toISOString()), 'batch submit')
    const answers = subs.map((sub, i) => existing[i] ?? this.queued(plan.ids[i]!, sub, createdAt))
    return answers.map((job, i) => answers[repeatOf(i) ?? i] ?? job)
  }

  /** The job (null: unknown); with `waitMs`, once it is final or that many ms passed (GET ?wait). */
  async get(id: string, waitMs = 0): Promise<Job | null> {
    this.requireConnections(false)
    const store = new StoreDeadline()
    const read = await store.call(this.d.store.get(id), 'read')
    if (!read) return null
    const found = waitMs > 0 && !isFinal(read.state) ? (await this.answer(read, waitMs, store)).job : read
    const job = isFinal(found.state)
      ? toPublic(found)
      : await withLiveProgress(toPublic(found), (j) => this.d.store.live(j), store)
    return withCallbackState(job, this.d.callbacks, store, this.d.logger)
  }

  async logs(id: string): Promise<JobLogs | null> {
    this.requireConnections(false)
    const store = new StoreDeadline()
    const [found, live] = await Promise.all([
      store.call(this.d.store.get(id), 'read'),
      store.call(this.d.store.live(id), 'read of the live record'),
    ])
    return found ? logsOf(id, live) : null
  }

  async list(q: JobQuery): Promise<JobPage> {
    this.requireConnections(false)
    const page = await new StoreDeadline().call(this.d.store.list(q), 'listing')
    return page.next !== undefined
      ? { jobs: page.jobs.map(toPublic), next: page.next }
      : { jobs: page.jobs.map(toPublic) }
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
      if (reply.job) return toPublic(reply.job)
    } catch (err) {
      throw errors.NO_BOSS('the boss did not answer; try again', { cause: err, retryAfterSeconds: 1 })
    }
    // Not an unfinished job: a finished one is answered as it is, an unknown one is null (404).
    return this.get(id)
  }

  retry(id: string, opts: RetryOptions): Promise<Job | null> {
    this.requireConnections()
    return retryOne(this.redrive(), id, opts).then((job) => (job ? toPublic(job) : null))
  }

  retryMany(q: BulkRetryQuery): Promise<BulkRetryAnswer> {
    this.requireConnections()
    return retryMatching(this.redrive(), q)
  }

  load(): ClusterLoadView {
    const l = this.d.backpressure.latest()
    if (l === undefined) return { at: null, epoch: null, since: null, queued: 0, running: 0, finished: 0 }
    return { ...l }
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
        let waiting = 0
        try {
          const status = parseWorkerStatusReply(
            await this.d.transport.request(w.address, MSG.workerStatus, {}, { timeoutMs: STATUS_TIMEOUT_MS }),
          )
          running = status.running
          waiting = status.waiting ?? 0
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
          waiting,
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

  private redrive(): RedrivePorts {
    return redrivePorts({ store: this.d.store, transport: this.d.transport, boss: () => this.requireBoss() })
  }

  /** The public record of job `i` of a plan just stored (queued). */
  private queued(id: string, sub: SubmittedJob, createdAt: Date): Job {
    const batch = id.slice(0, id.lastIndexOf('-'))
    const index = Number(id.slice(id.lastIndexOf('-') + 1))
    const jobs: Array<SubmittedJob | null> = []
    jobs[index] = sub
    return toPublic(assemble({ v: 1, batch, createdAt: createdAt.toISOString(), jobs }, index, undefined, 0))
  }

  /** Claim `key` for the job `id` (jobs/streams/claims.ts): null when ours, else the job that holds it. */
  private async claimed(key: string, id: string, store: StoreDeadline): Promise<Job | null> {
    const holder = await resolveClaim(
      {
        claim: (k, j) => store.call(this.d.store.claim(k, j), 'idempotency claim'),
        repoint: (k, c, j) => store.call(this.d.store.repoint(k, c, j), 'idempotency claim'),
        get: (j) => store.call(this.d.store.get(j), 'read of the job its idempotencyKey names'),
        abandoned: (j) => this.d.store.abandoned(j),
      },
      key,
      id,
    )
    return holder ? toPublic(holder) : null
  }

  /** An existing job (same idempotencyKey): as it is, or after waiting up to `waitMs` for it to end. */
  private async answer(job: Job, waitMs: number, store: StoreDeadline): Promise<SubmitResult> {
    if (waitMs <= 0 || isFinal(job.state)) return { job: toPublic(job), finished: isFinal(job.state) }
    const waiter = this.d.events.waitOnce(job.id, waitMs)
    try {
      // Re-read after subscribing: it may have finished in between. The job is stored: a read that
      // misses the deadline answers with what is known (202) rather than a 503. The event may come
      // before that read ends (a fresh job's first read walks its submission and batch state): then
      // the answer does not wait for it.
      const reread = store.callOr(this.d.store.get(job.id), 'read', null)
      const first = await Promise.race([
        reread.then((read) => ({ read })),
        waiter.promise.then((delivered) => ({ event: true as const, delivered })),
      ])
      if ('event' in first) {
        reread.catch(() => undefined)
        return await this.awaitFinish(job, Promise.resolve(first.delivered), store)
      }
      const again = first.read
      if (again && isFinal(again.state)) return { job: toPublic(again), finished: true }
      return await this.awaitFinish(again ?? job, waiter.promise, store)
    } finally {
      waiter.cancel()
    }
  }

  private async awaitFinish(job: Job, event: Promise<Job | undefined>, store: StoreDeadline): Promise<SubmitResult> {
    // A notice with the final record answers (api/events.ts); one without is a wake-up: read the store.
    const delivered = await store.outside(event)
    if (delivered?.id === job.id && isFinal(delivered.state)) return { job: toPublic(delivered), finished: true }
    const current = await store.callOr(this.d.store.get(job.id), 'read', null)
    const latest = current ?? job
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
}
