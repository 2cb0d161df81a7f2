/**
 * Fakes of what ClusterJobService (api/job-service.ts) stands on — the job store, the registry, the
 * election, the transport — for in-process tests of its own logic: deadlines on store calls and
 * which registrations count as workers. The real ones are tested against real servers elsewhere.
 */
import { EventEmitter } from 'node:events'
import type { Job } from '../../jobs/model.js'
import { newBatchId } from '../../jobs/job-ids.js'
import {
  AbandonedClaims,
  assemble,
  GroupCommitter,
  type Added,
  Submitter,
  Subjects,
  type Claim,
  type ListPage,
  type ListQuery,
  type SubmitPlan,
  type SubmitRecord,
  type SubmittedJob,
} from '../../jobs/streams/index.js'
import { WORKER_SERVICE } from '../../jobs/protocol.js'
import { Backpressure } from '../../api/backpressure.js'
import { ClusterJobService, type ApiStore, type JobServiceDeps } from '../../api/job-service.js'
import type { LeaderInfo, Registry, ServiceEntry } from '../../runner/index.js'
import { errors } from '../../runner/errors.js'
import { silentLogger } from '../../runner/logger.js'

export type StoreMethod = 'publish' | 'get' | 'claim' | 'repoint' | 'list'

/** A promise that never settles: a store whose NATS link stalled. */
const never = <T>(): Promise<T> => new Promise<T>(() => {})

const SILENT_MS = 100
/** The store took the call but its answer never came: the client's request times out. */
const lostAnswer = <T>(): Promise<T> =>
  new Promise<T>((_, reject) => setTimeout(() => reject(errors.STORE('no answer from the job store')), SILENT_MS))

/** An in-memory job store; a method listed in `hang` never answers (from its `hangAfter[m]`-th call on). */
export class FakeStore implements ApiStore {
  readonly jobs = new Map<string, Job>()
  /** Each job's submission as published. */
  readonly submitted = new Map<string, SubmittedJob>()
  readonly claims = new Map<string, Claim>()
  readonly hang = new Set<StoreMethod>()
  /**
   * Methods whose calls take effect in the store but whose answer is lost with the link: the caller
   * sees a timeout after SILENT_MS, as the store client's own request timeout would give.
   */
  readonly silent = new Set<StoreMethod>()
  /** Calls of a hanging method that still answer before it starts hanging. */
  readonly hangAfter: Partial<Record<StoreMethod, number>> = {}
  readonly calls: Record<StoreMethod, number> = { publish: 0, get: 0, claim: 0, repoint: 0, list: 0 }
  private readonly submitter = new Submitter(
    undefined as never,
    new Subjects('test'),
    { submit: 's', idem: 'i' },
    () => 1024 * 1024,
  )

  readonly retryAnswers = new Map<string, unknown>()

  async retryAnswer(requestId: string): Promise<unknown> {
    return this.retryAnswers.get(requestId)
  }

  async keepRetryAnswer(requestId: string, answer: unknown): Promise<unknown> {
    if (!this.retryAnswers.has(requestId)) this.retryAnswers.set(requestId, answer)
    return this.retryAnswers.get(requestId)
  }

  private readonly abandonedIds = new AbandonedClaims()

  abandon(jobIds: readonly string[]): void {
    this.abandonedIds.add(jobIds)
  }

  abandoned(jobId: string): boolean {
    return this.abandonedIds.has(jobId)
  }

  private stalls(m: StoreMethod): boolean {
    this.calls[m]++
    return this.hang.has(m) && this.calls[m] > (this.hangAfter[m] ?? 0)
  }

  /** Group commit on the fake store: one job per group (the grouping is tested against real NATS). */
  commit(job: SubmittedJob, key: string | undefined, createdAt: string): Added {
    const committer = new GroupCommitter({
      publish: (plan, jobs, createdAt) => this.publish(plan, jobs, createdAt),
      claim: (k, j) => this.claim(k, j),
      repoint: (k, c, j) => this.repoint(k, c, j),
      get: (j) => this.get(j),
      abandoned: (j) => this.abandoned(j),
      abandon: (ids) => this.abandon(ids),
      maxPayload: () => 1024 * 1024,
      newBatchId,
    })
    return committer.add(job, key, createdAt)
  }

  plan(jobs: readonly SubmittedJob[], newBatchId: () => string): SubmitPlan {
    return this.submitter.plan(jobs, newBatchId)
  }

  async publish(plan: SubmitPlan, jobs: ReadonlyArray<SubmittedJob | null>, createdAt: string): Promise<void> {
    if (this.stalls('publish')) return never()
    for (const { batch, start, end } of plan.chunks) {
      const record: SubmitRecord = { v: 1, batch, createdAt, jobs: jobs.slice(start, end) }
      record.jobs.forEach((j, i) => {
        if (j === null) return
        this.jobs.set(plan.ids[start + i]!, assemble(record, i, undefined, 0))
        this.submitted.set(plan.ids[start + i]!, j)
      })
    }
  }

  async get(id: string): Promise<Job | null> {
    if (this.stalls('get')) return never()
    return this.jobs.get(id) ?? null
  }

  /** No job has a live record here (the LIVE stream is tested on real NATS). */
  async live(_id: string): Promise<null> {
    return null
  }

  async claim(key: string, jobId: string): Promise<Claim> {
    if (this.stalls('claim')) return never()
    const had = this.claims.get(key)
    if (had !== undefined) return had
    const claim = { jobId, claimedAt: new Date().toISOString(), seq: this.claims.size + 1 }
    this.claims.set(key, claim)
    return this.silent.has('claim') ? lostAnswer() : claim
  }

  async repoint(key: string, abandoned: Claim, jobId: string): Promise<Claim> {
    if (this.stalls('repoint')) return never()
    const had = this.claims.get(key)
    if (had && had.seq !== abandoned.seq) return had
    const claim = { jobId, claimedAt: new Date().toISOString(), seq: (had?.seq ?? 0) + 1000 }
    this.claims.set(key, claim)
    return claim
  }

  async list(q: ListQuery): Promise<ListPage> {
    if (this.stalls('list')) return never()
    const jobs = [...this.jobs.values()].filter(
      (j) => (q.state === undefined || j.state === q.state) && (q.function === undefined || j.function === q.function),
    )
    return { jobs: jobs.reverse().slice(0, q.limit) }
  }
}

/** A registry holding fixed entries per service (and the peers list, which includes every node). */
export class FakeRegistry extends EventEmitter {
  readonly services = new Map<string, ServiceEntry[]>()
  peers: ServiceEntry[] = []

  async getCapable(service: string): Promise<ServiceEntry[]> {
    return this.services.get(service) ?? []
  }

  async getPeers(): Promise<ServiceEntry[]> {
    return this.peers
  }
}

export function entry(id: string, functions: string[], role = 'worker'): ServiceEntry {
  const meta = { role, functions, capacity: 4 }
  return { id, address: `bosun.test.proc.${id}`, host: 'h', pid: 1, meta, registeredAt: new Date(0).toISOString() }
}

export const BOSS_INFO: LeaderInfo = {
  id: 'boss-1',
  address: 'bosun.test.proc.boss-1',
  host: 'h',
  pid: 1,
  epoch: 1,
  since: new Date(0).toISOString(),
}

/** Like api/events.ts with no event ever published: resolves undefined after `timeoutMs`. */
function timedWaiter(_subject: string, timeoutMs: number): { promise: Promise<Job | undefined>; cancel(): void } {
  let timer: NodeJS.Timeout | undefined
  let settle: (v: Job | undefined) => void = () => {}
  const promise = new Promise<Job | undefined>((resolve) => {
    settle = resolve
    timer = setTimeout(() => resolve(undefined), timeoutMs)
  })
  return {
    promise,
    cancel: () => {
      clearTimeout(timer)
      settle(undefined)
    },
  }
}

export interface ServiceFakes {
  service: ClusterJobService
  store: FakeStore
  registry: FakeRegistry
}

/**
 * A ClusterJobService with a boss elected, one worker advertising `echo` (registered as a worker and
 * announced as a node) and a boss node advertising `echo` and `boss-only` (announced, not a worker).
 */
export function clusterService(overrides: Partial<JobServiceDeps> = {}): ServiceFakes {
  const store = new FakeStore()
  const registry = new FakeRegistry()
  const worker = entry('worker-1', ['echo'])
  registry.services.set(WORKER_SERVICE, [worker])
  registry.peers = [worker, entry(BOSS_INFO.id, ['echo', 'boss-only'])]
  const election = Object.assign(new EventEmitter(), {
    registerCandidate: async () => BOSS_INFO,
    resign: async () => {},
    whereisGlobal: async () => BOSS_INFO,
  })
  const transport = Object.assign(new EventEmitter(), {
    address: 'bosun.test.proc.api',
    connected: true,
    send: () => true,
    request: async () => {
      throw errors.REQUEST_TIMEOUT('fake transport: nobody answers')
    },
    handle: () => {},
    close: async () => {},
  })
  const service = new ClusterJobService({
    cluster: 'test',
    store,
    registry: registry as unknown as Registry,
    election: election,
    transport: transport,
    events: { waitOnce: timedWaiter },
    noBossWaitMs: 10,
    backpressure: new Backpressure(0),
    health: () => ({ zk: true, nats: true }),
    logger: silentLogger(),
    ...overrides,
  })
  return { service, store, registry }
}
