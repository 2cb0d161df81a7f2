/**
 * The job store (README "Architecture: the job store"): open the cluster's streams once and hand
 * out the views on them — the Submitter (API: store new jobs), the JobReader (API: get and
 * list), the BossJobStore (the boss: read open work, write state and final records) and the LiveStore
 * (workers write, the API reads jobs' progress and kept log lines).
 */
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { createInbox, type NatsConnection } from '@nats-io/transport-node'
import type { Logger } from '../../runner/logger.js'
import { ReplyInbox } from '../../runner/transport/reply-inbox.js'
import { finalAcksPrefix } from '../../runner/transport/subjects.js'
import { BossJobStore } from './boss-store.js'
import { StreamIO, type IoLimits } from './io.js'
import { Subjects } from './layout.js'
import { openStreams, type OpenedStreams } from './open.js'
import { JobReader } from './reader.js'
import { Submitter } from './submit.js'
import { GroupCommitter } from './group-commit.js'
import { LiveStore } from './live-store.js'
import { newBatchId } from '../job-ids.js'

export { BossJobStore, type OpenBatch, type StateWrite, type StoredCheckpoint } from './boss-store.js'
export { JobReader, decodeCursor, encodeCursor, type ListPage, type ListQuery } from './reader.js'
export { Submitter, type Claim, type SubmitPlan } from './submit.js'
export { ABANDONED_CLAIM_MS, AbandonedClaims, resolveClaim, type ClaimPorts } from './claims.js'
export { GroupCommitter, type Added, type GroupCommitPorts } from './group-commit.js'
export { LiveStore, type StoredLive } from './live-store.js'
export { isBatchId, jobIdOf, parseJobId, MAX_BATCH_JOBS, Subjects, streamNames } from './layout.js'
export {
  assemble,
  doneMask,
  doneSet,
  emptyState,
  tombstoneState,
  jobToSubmit,
  liveOf,
  runOf,
  type BatchState,
  type DoneCheckpoint,
  type LiveJob,
  type SubmitRecord,
  type SubmittedJob,
} from './records.js'

/** Timeout of one JetStream request: short, since a retry (safe for every store write) is cheaper than a long wait. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 3000
export const DEFAULT_OPERATION_TIMEOUT_MS = 20_000
/** Finished jobs are kept this long unless JOB_RETENTION_MS says otherwise. */
export const DEFAULT_RETENTION_MS = 24 * 3600 * 1000

export interface JobStreamsOptions {
  nc: NatsConnection
  cluster: string
  logger: Logger
  /** JetStream replicas when creating the streams. @defaultValue 1 */
  replicas?: number
  /**
   * How long finished jobs are kept. Given (workers): existing streams are updated to it and to
   * `replicas`. Absent (the API): streams are bound as they are, or created with defaults when missing.
   */
  retentionMs?: number
  limits?: Partial<IoLimits>
}

export class JobStreams {
  readonly submitter: Submitter
  readonly reader: JobReader
  readonly boss: BossJobStore
  readonly subjects: Subjects
  /** Jobs' progress and kept log lines (the LIVE stream). */
  readonly live: LiveStore

  private constructor(
    cluster: string,
    readonly names: OpenedStreams,
    io: StreamIO,
    /** The reply inboxes: private, and announced writes' (closed with the store). */
    private readonly inboxes: readonly [ReplyInbox, ReplyInbox],
    private readonly nc: NatsConnection,
    js: ReturnType<typeof jetstream>,
    jsm: Awaited<ReturnType<typeof jetstreamManager>>,
    log: Logger,
  ) {
    this.subjects = new Subjects(cluster)
    this.submitter = new Submitter(io, this.subjects, { submit: names.submit, idem: names.idem }, this.maxPayload)
    this.reader = new JobReader(io, this.subjects, names, log)
    this.live = new LiveStore(inboxes[0], this.subjects, names.live, log, io.limits.requestTimeoutMs)
    this.boss = new BossJobStore({
      js,
      jsm,
      io,
      subjects: this.subjects,
      streams: names,
      log,
      maxPayload: this.maxPayload,
    })
  }

  /** The server's largest message. */
  private readonly maxPayload = () => this.nc.info?.max_payload ?? 1024 * 1024

  /**
   * A group committer writing through this store with its idempotency claims: the API's one-by-one
   * submits, the boss's schedules.
   */
  groupCommitter(): GroupCommitter {
    return new GroupCommitter({
      publish: (plan, jobs, createdAt) => this.submitter.publish(plan, jobs, createdAt),
      claim: (key, jobId) => this.submitter.claim(key, jobId),
      repoint: (key, abandoned, jobId) => this.submitter.repoint(key, abandoned, jobId),
      get: (jobId) => this.reader.get(jobId),
      abandoned: (jobId) => this.submitter.abandonedClaims.has(jobId),
      abandon: (jobIds) => this.submitter.abandonedClaims.add(jobIds),
      maxPayload: this.maxPayload,
      newBatchId,
    })
  }

  /** Stops the publishes' reply inbox (watches are stopped by their owners); idempotent. */
  async close(): Promise<void> {
    for (const inbox of this.inboxes) inbox.close()
  }

  /** Create or bind the cluster's streams. Rejects with BOSUN_ERR_STORE when JetStream stays unavailable. */
  static async open(o: JobStreamsOptions): Promise<JobStreams> {
    const log = o.logger.child({ component: 'job-store' })
    const limits: IoLimits = {
      requestTimeoutMs: o.limits?.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      operationTimeoutMs: o.limits?.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
      maxInFlight: o.limits?.maxInFlight ?? 256,
      maxReadsInFlight: o.limits?.maxReadsInFlight ?? 128,
    }
    const js = jetstream(o.nc, { timeout: limits.requestTimeoutMs })
    const jsm = await jetstreamManager(o.nc, { timeout: limits.requestTimeoutMs })
    const names = await openStreams(
      jsm,
      {
        cluster: o.cluster,
        replicas: o.replicas ?? 1,
        retentionMs: o.retentionMs ?? DEFAULT_RETENTION_MS,
        apply: o.retentionMs !== undefined,
        operationTimeoutMs: limits.operationTimeoutMs,
      },
      log,
    )
    const inbox = new ReplyInbox(o.nc)
    // Its subscription starts with the first announced write (a boss's, or a worker's own final).
    const announced = new ReplyInbox(o.nc, finalAcksPrefix(o.cluster, createInbox().split('.').pop()!))
    const io = new StreamIO(inbox, jsm, limits, announced)
    return new JobStreams(o.cluster, names, io, [inbox, announced], o.nc, js, jsm, log)
  }
}
