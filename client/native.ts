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
import { newBatchId } from '../jobs/job-ids.js'
import { errors } from '../runner/errors.js'
import { silentLogger, type Logger } from '../runner/logger.js'
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_PRIORITY, DEFAULT_TIMEOUT_MS, type JobSpec } from '../jobs/model.js'
import {
  GroupCommitter,
  JobStreams,
  MAX_BATCH_JOBS,
  resolveClaim,
  type Claim,
  type SubmittedJob,
} from '../jobs/streams/index.js'

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

/** A client that submits jobs to a bosun cluster's job store directly over NATS. */
export class NativeClient {
  private readonly group: GroupCommitter
  private closing: Promise<void> | undefined

  private constructor(
    private readonly store: JobStreams,
    private readonly nc: NatsConnection,
    private readonly ownsConnection: boolean,
    maxInFlight: number,
    maxBatch: number,
  ) {
    const { submitter, reader } = store
    this.group = new GroupCommitter(
      {
        publish: (plan, jobs, createdAt) => submitter.publish(plan, jobs, createdAt),
        claim: (k, j) => submitter.claim(k, j),
        repoint: (k, c, j) => submitter.repoint(k, c, j),
        get: (j) => reader.get(j),
        abandoned: (j) => submitter.abandonedClaims.has(j),
        abandon: (ids) => submitter.abandonedClaims.add(ids),
        maxPayload: () => nc.info?.max_payload ?? 1024 * 1024,
        newBatchId,
      },
      maxInFlight,
      maxBatch,
    )
  }

  static async connect(o: NativeClientOptions = {}): Promise<NativeClient> {
    const nc =
      o.nc ?? (await connect({ servers: (o.natsUrl ?? 'nats://127.0.0.1:4222').split(','), noAsyncTraces: true }))
    try {
      const store = await JobStreams.open({ nc, cluster: o.cluster ?? 'bosun', logger: o.logger ?? silentLogger() })
      const maxBatch = Math.min(o.maxBatch ?? MAX_BATCH_JOBS, MAX_BATCH_JOBS)
      return new NativeClient(store, nc, o.nc === undefined, o.maxInFlight ?? 4, maxBatch)
    } catch (err) {
      if (o.nc === undefined) await nc.close()
      throw err
    }
  }

  /** Submit one job; resolves with its id once it is durably stored (or the id of the job holding its key). */
  async submit(spec: JobSpec): Promise<{ id: string }> {
    if (this.closing) throw errors.CLOSED('client is closed')
    const now = Date.now()
    const { id, stored } = this.group.add(toSubmitted(spec, now), spec.idempotencyKey, new Date(now).toISOString())
    const holder = await stored
    return { id: holder?.id ?? id }
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

  /** Idempotent: waits for writes in flight; later submits reject with BOSUN_ERR_CLOSED. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      while (this.group.busy) await new Promise((r) => setTimeout(r, 5))
      if (this.ownsConnection) await this.nc.close()
    })()
    return this.closing
  }

  /**
   * For each job with an idempotency key, the id of the job that already holds it (undefined: store
   * ours). A key repeated within the batch names its first job.
   */
  private async claims(keys: Array<string | undefined>, ids: string[]): Promise<Array<string | undefined>> {
    const ports = {
      claim: (k: string, j: string) => this.store.submitter.claim(k, j),
      repoint: (k: string, c: Claim, j: string) => this.store.submitter.repoint(k, c, j),
      get: (j: string) => this.store.reader.get(j),
      abandoned: (j: string) => this.store.submitter.abandonedClaims.has(j),
    }
    const first = new Map<string, number>()
    const held = Promise.all(
      keys.map(async (key, i) => {
        if (key === undefined) return undefined
        const seen = first.get(key)
        if (seen !== undefined) return ids[seen]
        first.set(key, i)
        return (await resolveClaim(ports, key, ids[i]!))?.id
      }),
    )
    // Nothing is sent when a claim fails: claims that landed name jobs that never will be.
    return held.catch((err: unknown) => {
      this.store.submitter.abandonedClaims.add(ids)
      throw err
    })
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
