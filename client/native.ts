/**
 * The native client: submits jobs straight to the job store over NATS, without the HTTP API — for
 * Node services that already reach NATS and want the cheapest submit (BullMQ's `add` / `addBulk`).
 * Same promise as the API's 202: a submit resolves only once JetStream acknowledged the job.
 *
 * One-by-one submits are group-committed: calls made while a write is in flight wait for it and go
 * together in the next batch message (at most `maxInFlight` writes at once, `maxBatch` jobs each),
 * so 64 concurrent `submit()` calls cost a few JetStream writes, not 64; a lone call is written at
 * once. Jobs are validated as the API validates them (a bad spec rejects with BOSUN_ERR_VALIDATION
 * before anything is written) and idempotency keys are resolved as the API resolves them (the same
 * key → the same job). Unlike the API it does not check that a worker advertises the function: such
 * a job waits, queued, until one does.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { Compile } from 'typebox/compile'
import { JobSpecSchema } from '../api/schemas.js'
import { newBatchId } from '../api/job-ids.js'
import { errors } from '../runner/errors.js'
import { silentLogger, type Logger } from '../runner/logger.js'
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, DEFAULT_TIMEOUT_MS, type JobSpec } from '../jobs/model.js'
import { JobStreams, MAX_BATCH_JOBS, resolveClaim, type Claim, type SubmittedJob } from '../jobs/streams/index.js'

export interface NativeClientOptions {
  /** NATS server(s), comma separated. @defaultValue nats://127.0.0.1:4222 */
  natsUrl?: string
  /** The cluster name (BOSUN_CLUSTER). @defaultValue bosun */
  cluster?: string
  /** An open connection to use instead (not closed by `close()`). */
  nc?: NatsConnection
  /** Writes in flight at once. @defaultValue 4 */
  maxInFlight?: number
  /** Most jobs in one batch message. @defaultValue 1000 */
  maxBatch?: number
  logger?: Logger
}

const checkSpec = Compile(JobSpecSchema)

interface Waiting {
  job: SubmittedJob
  key: string | undefined
  resolve(id: string): void
  reject(err: unknown): void
}

/** A client that submits jobs to a bosun cluster's job store directly over NATS. */
export class NativeClient {
  private queue: Waiting[] = []
  private inFlight = 0
  private scheduled = false
  private closing: Promise<void> | undefined

  private constructor(
    private readonly store: JobStreams,
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    private readonly maxInFlight: number,
    private readonly maxBatch: number,
  ) {}

  static async connect(o: NativeClientOptions = {}): Promise<NativeClient> {
    const nc =
      o.nc ?? (await connect({ servers: (o.natsUrl ?? 'nats://127.0.0.1:4222').split(','), noAsyncTraces: true }))
    try {
      const store = await JobStreams.open({ nc, cluster: o.cluster ?? 'bosun', logger: o.logger ?? silentLogger() })
      return new NativeClient(
        store,
        nc,
        o.nc === undefined,
        o.maxInFlight ?? 4,
        Math.min(o.maxBatch ?? MAX_BATCH_JOBS, MAX_BATCH_JOBS),
      )
    } catch (err) {
      if (o.nc === undefined) await nc.close()
      throw err
    }
  }

  /** Submit one job; resolves with its id once it is durably stored. */
  async submit(spec: JobSpec): Promise<{ id: string }> {
    if (this.closing) throw errors.CLOSED('client is closed')
    const job = toSubmitted(spec, Date.now())
    return new Promise<string>((resolve, reject) => {
      this.queue.push({ job, key: spec.idempotencyKey, resolve, reject })
      this.schedule()
    }).then((id) => ({ id }))
  }

  /** Submit jobs together (one batch message per `maxBatch`); resolves with their ids in order once all are stored. */
  async submitBatch(specs: JobSpec[]): Promise<{ ids: string[] }> {
    if (this.closing) throw errors.CLOSED('client is closed')
    const now = Date.now()
    const jobs = specs.map((s, index) => {
      try {
        return toSubmitted(s, now)
      } catch (err) {
        throw errors.VALIDATION(`jobs[${index}]: ${(err as Error).message}`, { details: { index } })
      }
    })
    const plan = this.store.submitter.plan(jobs, newBatchId)
    const held = await this.claims(
      specs.map((s) => s.idempotencyKey),
      plan.ids,
    )
    await this.store.submitter.publish(
      plan,
      jobs.map((j, i) => (held[i] ? null : j)),
      new Date(now).toISOString(),
    )
    return { ids: plan.ids.map((id, i) => held[i] ?? id) }
  }

  /**
   * For each job with an idempotency key, the id of the job that already holds it (undefined: store
   * ours). A key repeated within the group names its first job.
   */
  private async claims(keys: Array<string | undefined>, ids: string[]): Promise<Array<string | undefined>> {
    const ports = {
      claim: (k: string, j: string) => this.store.submitter.claim(k, j),
      repoint: (k: string, c: Claim, j: string) => this.store.submitter.repoint(k, c, j),
      get: (j: string) => this.store.reader.get(j),
    }
    const first = new Map<string, number>()
    return Promise.all(
      keys.map(async (key, i) => {
        if (key === undefined) return undefined
        const seen = first.get(key)
        if (seen !== undefined) return ids[seen]
        first.set(key, i)
        return (await resolveClaim(ports, key, ids[i]!))?.id
      }),
    )
  }

  /** Idempotent: waits for writes in flight; later submits reject with BOSUN_ERR_CLOSED. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.queue.length > 0 || this.inFlight > 0) await new Promise((r) => setTimeout(r, 5))
      if (this.ownsConnection) await this.nc.close()
    })()
    return this.closing
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.flush()
    })
  }

  /** Write what waits as one batch (group commit); when it is durable, the next group goes. */
  private flush(): void {
    while (this.queue.length > 0 && this.inFlight < this.maxInFlight) {
      const group = this.queue.splice(0, this.maxBatch)
      this.inFlight++
      const jobs = group.map((w) => w.job)
      const write = async () => {
        const plan = this.store.submitter.plan(jobs, newBatchId)
        const held = await this.claims(
          group.map((w) => w.key),
          plan.ids,
        )
        await this.store.submitter.publish(
          plan,
          jobs.map((j, i) => (held[i] ? null : j)),
          new Date().toISOString(),
        )
        return plan.ids.map((id, i) => held[i] ?? id)
      }
      write()
        .then(
          (ids) => group.forEach((w, i) => w.resolve(ids[i]!)),
          (err: unknown) => group.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          this.inFlight--
          if (this.queue.length > 0) this.schedule()
        })
      // Let more calls gather behind the writes in flight rather than send them one by one.
      if (this.inFlight >= 1 && this.queue.length < this.maxBatch) break
    }
  }
}

/** A job spec checked as the API checks it, with the API's defaults. */
function toSubmitted(spec: JobSpec, now: number): SubmittedJob {
  if (!checkSpec.Check(spec)) {
    const first = [...checkSpec.Errors(spec)][0]
    throw errors.VALIDATION(
      `invalid job: ${first ? `${first.instancePath || '/'} ${first.message}` : 'does not match the schema'}`,
    )
  }
  const job: SubmittedJob = {
    function: spec.function,
    payload: spec.payload ?? null,
    priority: spec.priority ?? DEFAULT_PRIORITY,
    timeoutMs: spec.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxAttempts: spec.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
  }
  if (spec.delayMs !== undefined && spec.delayMs > 0) job.runAt = new Date(now + spec.delayMs).toISOString()
  if (spec.idempotencyKey !== undefined) job.idempotencyKey = spec.idempotencyKey
  return job
}
