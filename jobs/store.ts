/**
 * The durable job store: one JetStream KV bucket per cluster (`bosun_<cluster>_jobs`, file storage,
 * history 1, configurable replicas), keys `jobs.<id>` (Job JSON) and `idem.<sha256>` (→ job id).
 *
 * - Every write resolves only after JetStream acknowledged it (stored on disk, on a quorum when
 *   replicated). Writes are single publishes with an expected-last-subject-sequence header, so
 *   many can be in flight at once (createMany, the boss's pipelined mutates).
 * - Writes are fenced: a record carries the epoch of the boss that wrote it, and mutate() refuses
 *   to overwrite a record written by a newer epoch (README "Guarantees, and how they are kept", 1;
 *   "Design notes", recipe 6).
 * - Transient failures (no ack in time, JetStream without leader during a restart/failover) are
 *   retried until `operationTimeoutMs`; a retried write that may already have landed is recognised
 *   by comparing the stored bytes with ours, so it is not applied twice.
 * - Garbage in the bucket (not JSON, not a Job, id ≠ key) is skipped with a warning, never thrown.
 * - Reads go to the stream leader (allow_direct off): a record is readable as soon as it is acked.
 */
import {
  jetstream,
  jetstreamManager,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream'
import { Kvm, type KV } from '@nats-io/kv'
import type { NatsConnection } from '@nats-io/transport-node'
import { BosunError, errors } from '../runner/errors.js'
import type { Logger } from '../runner/logger.js'
import type { Job, JobState } from './model.js'
import {
  bucketName,
  bytesEqual,
  decodeIdem,
  decodeJob,
  encodeJson,
  idemKey,
  isTransient,
  isValidJobId,
  isWrongLastSequence,
  jobKey,
} from './store-codec.js'
import { backoffMs, Records, sleep, type RawEntry } from './store-records.js'
import {
  JobWatcher,
  scanJobs,
  watchAsIterable,
  type BucketRef,
  type JobWatchStream,
  type WatchEntry,
} from './store-watch.js'

export type { JobWatchStream, WatchEntry } from './store-watch.js'

/**
 * Timeout of one JetStream request. Short on purpose: requests sent around a server restart can go
 * unanswered, and a retry (safe for every store write) is cheaper than a long wait.
 */
export const DEFAULT_REQUEST_TIMEOUT_MS = 3000
export const DEFAULT_OPERATION_TIMEOUT_MS = 20_000
export const DEFAULT_MAX_CAS_ATTEMPTS = 16
/** Writes in flight at once (JetStream publish throughput saturates around 100–200 in flight). */
export const DEFAULT_MAX_IN_FLIGHT = 256
/** Reads and purges in flight at once (the server answers these API requests one by one). */
export const DEFAULT_MAX_READS_IN_FLIGHT = 64
/** Room left for headers under the server's max_payload. */
const HEADER_ROOM = 1024

export interface JobStoreOptions {
  nc: NatsConnection
  cluster: string
  logger: Logger
  /**
   * Stream replicas (1, 3 or 5; at most the JetStream servers available). Only used when creating the bucket.
   * @defaultValue 1
   */
  replicas?: number
  /** Timeout of one JetStream request. @defaultValue {@link DEFAULT_REQUEST_TIMEOUT_MS} */
  requestTimeoutMs?: number
  /**
   * Budget of one store operation including retries of transient failures.
   * @defaultValue {@link DEFAULT_OPERATION_TIMEOUT_MS}
   */
  operationTimeoutMs?: number
  /** Attempts of a mutate that keeps losing compare-and-set races. @defaultValue {@link DEFAULT_MAX_CAS_ATTEMPTS} */
  maxCasAttempts?: number
  /**
   * Most writes in flight at once (all callers together); more wait their turn.
   * @defaultValue {@link DEFAULT_MAX_IN_FLIGHT}
   */
  maxInFlight?: number
  /** Most reads/purges in flight at once. @defaultValue {@link DEFAULT_MAX_READS_IN_FLIGHT} */
  maxReadsInFlight?: number
}

export interface StoredJob {
  job: Job
  /** KV revision (stream sequence) of the record; pass it back to mutate() to skip the read. */
  revision: number
}

export interface CreateResult extends StoredJob {
  /** false: a record with that id already existed; `job` is the stored one. */
  created: boolean
}

export interface MutateResult extends StoredJob {
  /** false when `fn` returned null (nothing written; `job`/`revision` are the current record). */
  changed: boolean
}

export interface MutateOptions {
  /** Last known revision of the record; with `current` (or `job`) no read is needed. */
  revision?: number
  /** Last known record at `revision`. */
  current?: Job
  /** Alias of `current`, so a StoredJob can be passed as it is. */
  job?: Job
  /** Stop retrying (conflicts, transient failures) once this aborts: a deposed boss's writes end with its term. */
  signal?: AbortSignal
}

export interface ScanFilter {
  state?: JobState | readonly JobState[]
  function?: string
}

export class JobStore {
  /** KV bucket name (`bosun_<cluster>_jobs`). */
  readonly bucket: string
  /** Backing stream name (`KV_<bucket>`). */
  readonly stream: string
  private readonly ref: BucketRef
  private readonly log: Logger
  private readonly records: Records
  private readonly watchers = new Set<JobWatcher>()
  private pending = 0
  private idle: (() => void) | undefined
  private closing: Promise<void> | undefined

  private constructor(
    private readonly nc: NatsConnection,
    js: JetStreamClient,
    jsm: JetStreamManager,
    kv: KV,
    bucket: string,
    log: Logger,
    opts: JobStoreOptions,
  ) {
    this.bucket = bucket
    this.stream = `KV_${bucket}`
    this.log = log
    const prefix = `$KV.${bucket}.`
    this.records = new Records(js, jsm, kv, this.stream, prefix, log, {
      requestTimeoutMs: opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
      operationTimeoutMs: opts.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS,
      maxCasAttempts: opts.maxCasAttempts ?? DEFAULT_MAX_CAS_ATTEMPTS,
      maxInFlight: opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT,
      maxReadsInFlight: opts.maxReadsInFlight ?? DEFAULT_MAX_READS_IN_FLIGHT,
    })
    this.ref = { js, jsm, stream: this.stream, jobSubjectPrefix: `${prefix}jobs.`, log }
  }

  /**
   * Open the cluster's bucket, creating it on first start (concurrent first starts are safe).
   * Rejects with BOSUN_ERR_STORE when JetStream stays unavailable for `operationTimeoutMs`.
   */
  static async open(opts: JobStoreOptions): Promise<JobStore> {
    const bucket = bucketName(opts.cluster)
    const log = opts.logger.child({ component: 'job-store', bucket })
    const timeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
    const replicas = opts.replicas ?? 1
    const deadline = Date.now() + (opts.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS)
    for (let attempt = 0; ; attempt++) {
      try {
        const js = jetstream(opts.nc, { timeout })
        const jsm = await jetstreamManager(opts.nc, { timeout })
        const kv = await new Kvm(js).create(bucket, {
          history: 1,
          storage: StorageType.File,
          replicas,
          allow_direct: false,
          description: `bosun job records of cluster ${opts.cluster}`,
        })
        const status = await kv.status()
        if (status.replicas !== replicas) {
          log.warn(
            { want: replicas, have: status.replicas },
            'job bucket exists with another replica count; keeping it',
          )
        }
        log.info({ replicas: status.replicas, values: status.values }, 'job store open')
        return new JobStore(opts.nc, js, jsm, kv, bucket, log, opts)
      } catch (err) {
        if (!isTransient(err) || Date.now() > deadline) {
          throw errors.STORE(`cannot open job bucket ${bucket}: ${(err as Error).message}`, { cause: err })
        }
        await sleep(backoffMs(attempt))
      }
    }
  }

  /**
   * Store `job` unless a record with its id exists (create-if-absent). Resolves once durable.
   * `created: false` returns the stored record instead. Rejects with BOSUN_ERR_VALIDATION for an
   * id that cannot be a key, BOSUN_ERR_BODY_TOO_LARGE when the record exceeds the server's
   * max_payload, BOSUN_ERR_STORE when JetStream is unavailable.
   */
  create(job: Job): Promise<CreateResult> {
    return this.track(() => this.createEncoded(job, this.encodeForCreate(job)))
  }

  /**
   * create() for many jobs, pipelined (all queued at once, maxInFlight writes on the wire), results in order.
   * Every record is validated and encoded before anything is written: a bad one rejects the whole
   * batch untouched (details.index). If some writes fail, the others are still stored (they are
   * durable and idempotent by id: retrying the same jobs is safe) and the promise rejects with
   * BOSUN_ERR_STORE listing `failedIndexes`.
   */
  createMany(jobs: readonly Job[]): Promise<CreateResult[]> {
    return this.track(async () => {
      const encoded = jobs.map((job, index) => {
        try {
          return this.encodeForCreate(job)
        } catch (err) {
          if (err instanceof BosunError)
            throw new BosunError(err.code, err.statusCode, `job ${index}: ${err.message}`, {
              details: { ...err.details, index },
            })
          throw err
        }
      })
      const settled = await Promise.allSettled(jobs.map((job, i) => this.createEncoded(job, encoded[i]!)))
      const results: CreateResult[] = []
      const failed: Array<{ index: number; err: unknown }> = []
      settled.forEach((r, index) =>
        r.status === 'fulfilled' ? results.push(r.value) : failed.push({ index, err: r.reason }),
      )
      if (failed.length > 0) {
        const first = failed[0]!.err
        throw errors.STORE(`${failed.length} of ${jobs.length} jobs were not stored: ${(first as Error).message}`, {
          cause: first,
          details: { failedIndexes: failed.slice(0, 100).map((f) => f.index), failed: failed.length },
        })
      }
      return results
    })
  }

  /**
   * Claim `idempotencyKey` for `jobId` (create-if-absent on `idem.<sha256(key)>`). Returns the
   * winning job id: ours, or the one that claimed the key first. A claim is removed only with its
   * job by purge(). Recommended flow: claim; if another id wins, get() it; if that job is missing
   * (its creator crashed between claim and create) create the job under the winning id.
   */
  claimIdempotencyKey(idempotencyKey: string, jobId: string): Promise<string> {
    return this.track(async () => {
      if (!isValidJobId(jobId)) throw errors.VALIDATION(`invalid job id ${JSON.stringify(jobId)}`)
      const data = encodeJson({ jobId, claimedAt: new Date().toISOString() })
      const res = await this.records.createIfAbsent(idemKey(idempotencyKey), data, (raw) => decodeIdem(raw) !== null)
      if (res.created) return jobId
      return decodeIdem(res.existing.data)!.jobId
    })
  }

  /** The record of `id`, or null when absent, deleted, garbage, or `id` cannot be a key. */
  get(id: string): Promise<StoredJob | null> {
    return this.track(async () => {
      if (!isValidJobId(id)) return null
      const raw = await this.records.read(jobKey(id), this.records.deadline())
      return raw === null ? null : this.toStored(id, raw)
    })
  }

  /**
   * Fenced compare-and-set of one record. Reads the record (skipped when `opts` carries the last
   * known `revision` and record), throws BOSUN_ERR_STALE_EPOCH when the stored record was written
   * by a newer epoch than `epoch`, applies `fn` (null: no change; `fn` must not modify its
   * argument), and writes the result stamped with `epoch` only if the record is still at that
   * revision. On a lost race it re-reads and retries, up to maxCasAttempts. Resolves with the
   * written record (fn's result object, id and epoch enforced; undefined fields are not stored) and
   * its new revision once durable; null when the job does not exist.
   */
  mutate(
    id: string,
    epoch: number,
    fn: (current: Job) => Job | null,
    opts: MutateOptions = {},
  ): Promise<MutateResult | null> {
    return this.track(async () => {
      if (!Number.isSafeInteger(epoch) || epoch < 0) throw errors.VALIDATION(`invalid epoch ${epoch}`)
      if (!isValidJobId(id)) return null
      const key = jobKey(id)
      const deadline = this.records.deadline()
      let current = opts.current ?? opts.job
      let revision = opts.revision
      let attempted: Uint8Array | undefined
      for (let conflicts = 0, transient = 0; ;) {
        if (opts.signal?.aborted)
          throw errors.NOT_LEADER(`mutate job ${id}: abandoned (${String(opts.signal.reason ?? 'aborted')})`)
        if (current === undefined || revision === undefined) {
          const raw = await this.records.read(key, deadline, opts.signal)
          if (raw === null || raw.op !== 'PUT') return null
          const stored = this.toStored(id, raw)
          if (stored === null) return null
          // an earlier attempt whose ack was lost did land: done (do not apply fn twice)
          if (attempted !== undefined && bytesEqual(raw.data, attempted)) return { ...stored, changed: true }
          current = stored.job
          revision = stored.revision
        }
        if (current.epoch > epoch) {
          throw errors.STALE_EPOCH(`job ${id} was written by epoch ${current.epoch}; writer has epoch ${epoch}`, {
            details: { id, storedEpoch: current.epoch, epoch },
          })
        }
        const next = fn(current)
        if (next === null) return { job: current, revision, changed: false }
        const record: Job = next.id === id && next.epoch === epoch ? next : { ...next, id, epoch }
        const data = this.encodeChecked(record)
        try {
          const rev = await this.records.publish(key, data, revision)
          return { job: record, revision: rev, changed: true }
        } catch (err) {
          if (isWrongLastSequence(err)) {
            if (++conflicts >= this.records.limits.maxCasAttempts) {
              throw errors.STORE(`job ${id}: gave up after ${conflicts} compare-and-set conflicts`, {
                cause: err,
                details: { id },
              })
            }
            // the first retry is immediate; later ones back off a random bit so contenders spread out
            if (conflicts > 1) await sleep(Math.random() * Math.min(2 ** conflicts, 100))
          } else if (isTransient(err) && Date.now() < deadline) {
            attempted = data
            await sleep(backoffMs(transient++))
          } else {
            throw this.records.error(`mutate job ${id}`, err)
          }
          current = undefined
          revision = undefined
        }
      }
    })
  }

  /**
   * Watch every job record: `onEntry` for each current record, then `onInitialDone()` once (every
   * record that existed when the watch started has been delivered), then `onEntry` for every later
   * change, in store order, across NATS restarts and reconnects. `onError` fires if the watch ends
   * for good (connection closed). Returns a stop function.
   */
  watchJobs(
    onEntry: (entry: WatchEntry) => void,
    onInitialDone: () => void,
    onError?: (err: unknown) => void,
  ): () => void {
    this.assertOpen()
    const watcher = new JobWatcher(this.ref, onEntry, onInitialDone, onError)
    this.watchers.add(watcher)
    return () => {
      this.watchers.delete(watcher)
      void watcher.stop()
    }
  }

  /**
   * watchJobs() as an async iterable: `{ type: 'entry', … }` events, with one
   * `{ type: 'initial-load-done' }` event between the initial records and the live changes.
   * Events are buffered without bound while the consumer of the iterable is slow.
   */
  watch(): JobWatchStream {
    return watchAsIterable((onEntry, onInitialDone, onError) => this.watchJobs(onEntry, onInitialDone, onError))
  }

  /** Every job record now in the bucket (garbage skipped), optionally filtered by state/function. */
  async *scan(filter: ScanFilter = {}): AsyncGenerator<StoredJob> {
    this.assertOpen()
    const states =
      filter.state === undefined
        ? undefined
        : new Set<JobState>(typeof filter.state === 'string' ? [filter.state] : filter.state)
    for await (const s of scanJobs(this.ref)) {
      if (states !== undefined && !states.has(s.job.state)) continue
      if (filter.function !== undefined && s.job.function !== filter.function) continue
      yield s
    }
  }

  /**
   * Remove a (finished) job entirely, with its idempotency claim when the claim points to this job.
   * The record's only message (history 1) is deleted from the stream by sequence — no tombstone is
   * kept and watchers see no event for it; this is several times cheaper than a purge by subject.
   * Pass the last known record and revision (`opts`, e.g. a StoredJob) to skip the read; if the
   * record changed since, the newer revision is removed too. Idempotent.
   */
  purge(id: string, opts: { job?: Job; revision?: number } = {}): Promise<void> {
    return this.track(async () => {
      if (!isValidJobId(id)) return
      const deadline = this.records.deadline()
      let job = opts.job
      let revision = opts.revision
      if (revision === undefined) {
        const raw = await this.records.read(jobKey(id), deadline)
        if (raw !== null) {
          revision = raw.revision
          job ??= this.toStored(id, raw)?.job
        }
      }
      if (revision !== undefined) await this.records.deleteAt(jobKey(id), revision, deadline)
      if (job?.idempotencyKey !== undefined) {
        const key = idemKey(job.idempotencyKey)
        const claim = await this.records.read(key, deadline)
        if (claim !== null && decodeIdem(claim.data)?.jobId === id)
          await this.records.deleteAt(key, claim.revision, deadline)
      }
    })
  }

  /** Idempotent: stops every watch and waits for operations in flight; later calls reject with BOSUN_ERR_CLOSED. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.watchers].map((w) => w.stop()))
      this.watchers.clear()
      if (this.pending > 0) await new Promise<void>((r) => (this.idle = r))
      this.log.debug('job store closed')
    })()
    return this.closing
  }

  // ---- internals ----

  private assertOpen(): void {
    if (this.closing !== undefined) throw errors.CLOSED('job store is closed')
  }

  private async track<T>(op: () => Promise<T>): Promise<T> {
    this.assertOpen()
    this.pending++
    try {
      return await op()
    } finally {
      if (--this.pending === 0 && this.idle) this.idle()
    }
  }

  private encodeChecked(job: Job): Uint8Array {
    const data = encodeJson(job)
    const max = (this.nc.info?.max_payload ?? 1024 * 1024) - HEADER_ROOM
    if (data.length > max) {
      throw errors.BODY_TOO_LARGE(`job record of ${data.length} bytes exceeds the store limit of ${max} bytes`, {
        details: { id: job.id, bytes: data.length, max },
      })
    }
    return data
  }

  private encodeForCreate(job: Job): Uint8Array {
    if (!isValidJobId(job?.id)) throw errors.VALIDATION(`invalid job id ${JSON.stringify(job?.id)}`)
    return this.encodeChecked(job)
  }

  private async createEncoded(job: Job, data: Uint8Array): Promise<CreateResult> {
    const res = await this.records.createIfAbsent(jobKey(job.id), data, (raw) => decodeJob(raw, job.id).job !== null)
    if (res.created) return { job, revision: res.revision, created: true }
    return { job: decodeJob(res.existing.data, job.id).job!, revision: res.existing.revision, created: false }
  }

  private toStored(id: string, raw: RawEntry): StoredJob | null {
    if (raw.op !== 'PUT') return null
    const decoded = decodeJob(raw.data, id)
    if (decoded.job === null) {
      this.log.warn(
        { key: jobKey(id), revision: raw.revision, problem: decoded.problem },
        'skipping garbage in the job bucket',
      )
      return null
    }
    return { job: decoded.job, revision: raw.revision }
  }
}
