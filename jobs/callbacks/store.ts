/**
 * Where completion callbacks live in JetStream (README "Completion callbacks"): two streams per
 * cluster, created by the workers (the API only binds to the status stream).
 *
 * - TASKS (`bosun_<c>_callbacks`, work-queue retention, subject `bosun.<c>.cb.<jobId>`): one
 *   `{ v: 1, jobId, run }` per finished run of a job with a callbackUrl, published by the boss
 *   before the job's final record (message id `<jobId>.<run>`: a republish is stored once), consumed
 *   and removed by the acting boss's deliverer (worker/boss/callback-runner.ts).
 * - STATUS (`bosun_<c>_cbstatus`, one message per subject, max age JOB_RETENTION_MS, subject
 *   `bosun.<c>.cbs.<jobId>`): the delivery state of the job's newest run, written by the deliverer
 *   and read by GET /jobs/:id.
 *
 * Everything read back is validated: garbage decodes to null (and is dropped with a warning).
 */
import { jetstream, jetstreamManager, RetentionPolicy, StorageType, type JetStreamClient } from '@nats-io/jetstream'
import type { JetStreamManager } from '@nats-io/jetstream'
import type { NatsConnection } from '@nats-io/transport-node'
import { ensureStream, type StreamSpec } from '../../runner/jetstream-stream.js'
import type { Logger } from '../../runner/logger.js'
import { isObject, isSafeCount, optionalString } from '../parse.js'
import { isValidJobId, untilStoreAnswers } from '../store-codec.js'

export const CALLBACK_STATES = ['pending', 'delivered', 'failed'] as const
export type CallbackState = (typeof CALLBACK_STATES)[number]

/** What GET /jobs/:id shows of a job's callback. */
export interface CallbackView {
  state: CallbackState
  /** POSTs made for the job's current run. */
  attempts: number
  /** HTTP status of the last attempt (absent: no answer — timeout, connection error — or none yet). */
  lastStatus?: number
  /** Why the last attempt did not deliver (absent once delivered). */
  lastError?: string
}

/** The stored status of a job's callback (the view, plus the run it is about and when it changed). */
export interface CallbackStatus extends CallbackView {
  v: 1
  jobId: string
  run: number
  at: string
}

/** A delivery task: run `run` of job `jobId` is final (or about to be: its final record may follow). */
export interface CallbackTask {
  v: 1
  jobId: string
  run: number
}

export function callbackStreams(cluster: string): { tasks: string; status: string } {
  return { tasks: `bosun_${cluster}_callbacks`, status: `bosun_${cluster}_cbstatus` }
}

export function callbackTaskSubject(cluster: string, jobId: string): string {
  return `bosun.${cluster}.cb.${jobId}`
}

function statusSubject(cluster: string, jobId: string): string {
  return `bosun.${cluster}.cbs.${jobId}`
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

export function encodeJson(x: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(x))
}

function parse(data: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(data))
  } catch {
    return undefined
  }
}

export function decodeTask(data: Uint8Array): CallbackTask | null {
  const x = parse(data)
  if (!isObject(x) || x.v !== 1 || !isValidJobId(x.jobId) || !isSafeCount(x.run)) return null
  return { v: 1, jobId: x.jobId, run: x.run }
}

export function decodeStatus(data: Uint8Array, jobId: string): CallbackStatus | null {
  const x = parse(data)
  if (!isObject(x) || x.v !== 1 || x.jobId !== jobId || !isSafeCount(x.run) || !isSafeCount(x.attempts)) return null
  if (!CALLBACK_STATES.includes(x.state as CallbackState) || typeof x.at !== 'string') return null
  if (x.lastStatus !== undefined && !isSafeCount(x.lastStatus)) return null
  if (!optionalString(x.lastError)) return null
  return x as unknown as CallbackStatus
}

/** The public part of a status. */
export function viewOf(s: CallbackView): CallbackView {
  const v: CallbackView = { state: s.state, attempts: s.attempts }
  if (s.lastStatus !== undefined) v.lastStatus = s.lastStatus
  if (s.lastError !== undefined) v.lastError = s.lastError
  return v
}

export interface CallbackStoreOptions {
  nc: NatsConnection
  cluster: string
  logger: Logger
  replicas?: number
  /** Status records expire this long after their last change (workers: JOB_RETENTION_MS; the API: absent, binds). */
  retentionMs?: number
  timeoutMs?: number
}

/** The status stream (and, for workers, the task stream): read and write the delivery state of jobs. */
/** JetStream's deduplication window of the callback streams (its default, 2 min). */
const DUPLICATE_WINDOW_MS = 120_000

export class CallbackStore {
  private constructor(
    readonly cluster: string,
    readonly js: JetStreamClient,
    readonly jsm: JetStreamManager,
    private readonly log: Logger,
  ) {}

  /**
   * Create or bind the streams. Workers (retentionMs given) create both and bring the status
   * stream's age limit in line; the API binds to the status stream (creating it when first).
   */
  static async open(o: CallbackStoreOptions): Promise<CallbackStore> {
    const log = o.logger.child({ component: 'callback-store' })
    const js = jetstream(o.nc, { timeout: 5000 })
    const jsm = await jetstreamManager(o.nc, { timeout: 5000 })
    const names = callbackStreams(o.cluster)
    const base = {
      storage: StorageType.File,
      num_replicas: o.replicas ?? 1,
      duplicate_window: DUPLICATE_WINDOW_MS * 1e6,
    }
    const retentionMs = o.retentionMs ?? 24 * 3600 * 1000
    const specs: StreamSpec[] = [
      {
        ...base,
        name: names.status,
        subjects: [`bosun.${o.cluster}.cbs.>`],
        retention: RetentionPolicy.Limits,
        max_msgs_per_subject: 1,
        max_age: retentionMs * 1e6,
        // JetStream refuses a duplicates window longer than the age limit (a short JOB_RETENTION_MS).
        duplicate_window: Math.min(DUPLICATE_WINDOW_MS, retentionMs) * 1e6,
        description: 'bosun: delivery state of completion callbacks',
      },
    ]
    if (o.retentionMs !== undefined)
      specs.push({
        ...base,
        name: names.tasks,
        subjects: [`bosun.${o.cluster}.cb.>`],
        retention: RetentionPolicy.Workqueue,
        max_age: 0,
        description: 'bosun: completion callbacks to deliver',
      })
    const deadline = Date.now() + (o.timeoutMs ?? 30_000)
    for (const spec of specs)
      await untilStoreAnswers(
        () => ensureStream(jsm, spec, log, o.retentionMs !== undefined),
        deadline,
        `cannot open stream ${spec.name}`,
      )
    return new CallbackStore(o.cluster, js, jsm, log)
  }

  /** The stored status of a job's callback (null: none yet, or garbage — dropped with a warning). */
  async status(jobId: string): Promise<CallbackStatus | null> {
    const msg = await this.jsm.streams.getMessage(callbackStreams(this.cluster).status, {
      last_by_subj: statusSubject(this.cluster, jobId),
    })
    if (!msg) return null
    const s = decodeStatus(msg.data, jobId)
    if (!s) this.log.warn({ jobId, seq: msg.seq }, 'a callback status that is not one: ignored')
    return s
  }

  async writeStatus(s: CallbackStatus): Promise<void> {
    await this.js.publish(statusSubject(this.cluster, s.jobId), encodeJson(s))
  }
}
