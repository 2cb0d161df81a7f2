/**
 * Messages between the API, the boss and the workers (NATS, inside the runtime's Envelope): for
 * each message one body type, one reply type and one parser. Everything that arrives on NATS is
 * parsed here before anyone believes it — a malformed body is a BOSUN_ERR_BAD_MESSAGE, never a
 * cast. Every message a boss sends carries its fencing epoch; receivers refuse one older than the
 * newest they have seen (README "Guarantees", 1).
 */
import { errors } from '../runner/errors.js'
import { isValidJobId, jobShapeProblem } from './store-codec.js'
import type { Job, JobError } from './model.js'
import { isIsoTime, isObject, isSafeCount, jobErrorFrom, optionalString } from './parse.js'
import { progressProblem } from './live.js'

/** Election name of the global singleton that dispatches jobs. */
export const BOSS = 'boss'
/** Registry service under which workers that accept jobs advertise themselves. */
export const WORKER_SERVICE = 'worker'

/** Message types, named by their receiver. */
export const MSG = {
  /** boss → worker (request): run these jobs. */
  dispatch: 'worker.dispatch',
  /** boss → worker (send): abort a running job (cancel). */
  abort: 'worker.abort',
  /** boss → worker (request): what are you running, which results are unacknowledged? */
  inventory: 'worker.inventory',
  /** anyone → worker (request): live counters for GET /cluster. */
  workerStatus: 'worker.status',
  /** worker → boss (request): finished attempts; the reply acknowledges them. */
  results: 'boss.results',
  /** API → boss (request): cancel a job. */
  cancelJob: 'boss.cancel',
  /** API → boss (request): boss state (epoch, queue size, per-worker running counts). */
  bossStatus: 'boss.status',
  /** boss → anyone (send, on `finishedJobsSubject`): these jobs' final records are durable. */
  finished: 'jobs.finished',
} as const

export * from './dispatch-message.js'

// ---- boss → worker: abort -----------------------------------------------------------------------

export interface AbortBody {
  epoch: number
  jobId: string
}

export function parseAbortBody(x: unknown): AbortBody {
  if (!isObject(x) || !isSafeCount(x.epoch) || !isValidJobId(x.jobId))
    throw errors.BAD_MESSAGE('abort needs { epoch, jobId }')
  return { epoch: x.epoch, jobId: x.jobId }
}

// ---- worker → boss: results ---------------------------------------------------------------------

export type AttemptOutcome =
  | { ok: true; result: unknown }
  | {
      ok: false
      error: JobError
      /** the worker gave the job back (shutdown): requeue without counting a failure */ handedBack?: boolean
    }

/** One finished attempt, as reported by the worker that ran it. */
export interface AttemptResult {
  jobId: string
  /** 1-based attempt number (the dispatched record's `attempts`). */
  attempt: number
  /** The epoch of the dispatch that started this attempt. */
  epoch: number
  worker: string
  startedAt: string
  finishedAt: string
  outcome: AttemptOutcome
  /** The job's run the attempt belongs to (absent: 0). */
  run?: number
  /** The attempt's last ctx.progress value (absent: it reported none); kept in the final record. */
  progress?: unknown
  /**
   * The worker wrote the job's final record itself (a dispatch with `final`): its DONE sequence and
   * the record as stored, `payload` null. Only on a success.
   */
  stored?: { seq: number; job: Job }
}

export interface ResultsBody {
  results: AttemptResult[]
}

export interface ResultsReply {
  /** Job ids whose results are durably recorded (or known to be obsolete): the worker forgets them. */
  acked: string[]
  /**
   * The epoch of the boss term that recorded them. A worker does not believe an acknowledgement from
   * an epoch older than the newest it has seen (absent: a boss of an older version; believed).
   */
  epoch?: number
}

/** A finished attempt, strictly checked (whatever goes into a job record must decode as a job again), or undefined. */
export function parseAttemptResult(x: unknown): AttemptResult | undefined {
  if (!isObject(x) || !isValidJobId(x.jobId) || !isSafeCount(x.attempt) || x.attempt < 1 || !isSafeCount(x.epoch))
    return undefined
  if (typeof x.worker !== 'string' || x.worker.length === 0 || !isIsoTime(x.startedAt) || !isIsoTime(x.finishedAt))
    return undefined
  const o = x.outcome
  if (!isObject(o) || typeof o.ok !== 'boolean') return undefined
  let outcome: AttemptOutcome
  if (o.ok) {
    outcome = { ok: true, result: o.result === undefined ? null : o.result }
  } else {
    const error = jobErrorFrom(o.error)
    if (error === undefined) return undefined
    outcome = o.handedBack === true ? { ok: false, error, handedBack: true } : { ok: false, error }
  }
  const r: AttemptResult = {
    jobId: x.jobId,
    attempt: x.attempt,
    epoch: x.epoch,
    worker: x.worker,
    startedAt: x.startedAt,
    finishedAt: x.finishedAt,
    outcome,
  }
  if (isSafeCount(x.run) && x.run > 0) r.run = x.run
  if (outcome.ok && x.stored !== undefined) {
    const stored = storedFinalFrom(x.stored, r.jobId)
    if (stored) r.stored = stored
  }
  if (x.progress !== undefined && progressProblem(x.progress) === undefined) r.progress = x.progress
  return r
}

/** A worker's report of a final it stored for job `id` (undefined when it is not one: the boss writes instead). */
function storedFinalFrom(x: unknown, id: string): { seq: number; job: Job } | undefined {
  if (!isObject(x) || !isSafeCount(x.seq) || x.seq < 1) return undefined
  const job = x.job
  if (!isObject(job) || job.id !== id || job.state !== 'succeeded' || jobShapeProblem(job) !== null) return undefined
  return { seq: x.seq, job: job as unknown as Job }
}

/** The results of a results message (malformed items dropped and counted); BAD_MESSAGE when it has no list. */
export function parseResultsBody(x: unknown): { results: AttemptResult[]; dropped: number } {
  if (!isObject(x) || !Array.isArray(x.results)) throw errors.BAD_MESSAGE('results needs { results[] }')
  const results: AttemptResult[] = []
  for (const r of x.results) {
    const parsed = parseAttemptResult(r)
    if (parsed) results.push(parsed)
  }
  return { results, dropped: x.results.length - results.length }
}

export function parseResultsReply(x: unknown): ResultsReply {
  if (!isObject(x) || !Array.isArray(x.acked)) throw errors.BAD_MESSAGE('results reply needs { acked[] }')
  const reply: ResultsReply = { acked: x.acked.filter((id): id is string => typeof id === 'string') }
  if (isSafeCount(x.epoch)) reply.epoch = x.epoch
  return reply
}

// ---- boss → worker: inventory -------------------------------------------------------------------

export interface InventoryBody {
  epoch: number
  /** Page through held results: only those with a job id after this one. */
  after?: string
}

export interface RunningAttempt {
  jobId: string
  attempt: number
  epoch: number
  startedAt: string
}

/** A finished attempt the worker still holds (not yet acknowledged): the result itself comes through the outbox. */
export interface HeldResult {
  jobId: string
  attempt: number
}

export interface InventoryReply {
  worker: string
  running: RunningAttempt[]
  held: HeldResult[]
  /** More held results follow: ask again with `after: next`. */
  next?: string
  /**
   * The last dispatch this worker took from an older boss (epoch and ISO time): the new boss learns
   * when its predecessor last dispatched (the failover gap of cluster events, runner/events).
   */
  lastDispatch?: { epoch: number; at: string }
}

/** Held results per inventory page: keeps a reply far below the NATS max payload whatever the backlog. */
export const INVENTORY_PAGE = 2000

export function parseInventoryBody(x: unknown): InventoryBody {
  if (!isObject(x) || !isSafeCount(x.epoch) || !optionalString(x.after))
    throw errors.BAD_MESSAGE('inventory needs { epoch, after? }')
  return x.after === undefined ? { epoch: x.epoch } : { epoch: x.epoch, after: x.after as string }
}

export function parseInventoryReply(x: unknown): InventoryReply {
  if (!isObject(x) || typeof x.worker !== 'string' || !Array.isArray(x.running) || !Array.isArray(x.held)) {
    throw errors.BAD_MESSAGE('inventory reply needs { worker, running[], held[] }')
  }
  const running: RunningAttempt[] = []
  for (const r of x.running) {
    if (!isObject(r) || !isValidJobId(r.jobId) || !isSafeCount(r.attempt) || r.attempt < 1) continue
    const startedAt = isIsoTime(r.startedAt) ? r.startedAt : new Date().toISOString()
    running.push({ jobId: r.jobId, attempt: r.attempt, epoch: isSafeCount(r.epoch) ? r.epoch : 0, startedAt })
  }
  const held: HeldResult[] = []
  for (const h of x.held)
    if (isObject(h) && isValidJobId(h.jobId) && isSafeCount(h.attempt) && h.attempt >= 1)
      held.push({ jobId: h.jobId, attempt: h.attempt })
  const reply: InventoryReply = { worker: x.worker, running, held }
  if (typeof x.next === 'string') reply.next = x.next
  const last = x.lastDispatch
  if (isObject(last) && isSafeCount(last.epoch) && isIsoTime(last.at))
    reply.lastDispatch = { epoch: last.epoch, at: last.at }
  return reply
}

// ---- anyone → worker: status --------------------------------------------------------------------

export interface WorkerStatusReply {
  id: string
  running: number
  /** Jobs dispatched to it ahead of a free slot, waiting to start (absent from older workers: 0). */
  waiting?: number
  capacity: number
  functions: string[]
  draining: boolean
}

export function parseWorkerStatusReply(x: unknown): WorkerStatusReply {
  if (
    !isObject(x) ||
    typeof x.id !== 'string' ||
    !isSafeCount(x.running) ||
    !isSafeCount(x.capacity) ||
    !Array.isArray(x.functions)
  ) {
    throw errors.BAD_MESSAGE('worker status needs { id, running, capacity, functions[] }')
  }
  return {
    id: x.id,
    running: x.running,
    ...(isSafeCount(x.waiting) ? { waiting: x.waiting } : {}),
    capacity: x.capacity,
    functions: x.functions.filter((f): f is string => typeof f === 'string'),
    draining: x.draining === true,
  }
}

// ---- API → boss ---------------------------------------------------------------------------------

export interface CancelJobBody {
  id: string
}

export interface CancelJobReply {
  /** The job after the cancel (null: no such job). */
  job: Job | null
}

export function parseCancelJobReply(x: unknown): CancelJobReply {
  if (!isObject(x) || !('job' in x)) throw errors.BAD_MESSAGE('cancel reply needs { job }')
  if (x.job === null) return { job: null }
  if (jobShapeProblem(x.job) !== null) throw errors.BAD_MESSAGE(`cancel reply: ${jobShapeProblem(x.job)}`)
  return { job: x.job as Job }
}

export interface BossStatusReply {
  epoch: number
  since: string
  queued: number
  running: number
  /** Jobs this term finalized (cumulative; starts at 0 with each term). */
  finished: number
  workers: Record<string, number>
  /** Running jobs per function (absent from an older boss). */
  functions?: Record<string, number>
}

export function parseBossStatusReply(x: unknown): BossStatusReply {
  if (
    !isObject(x) ||
    !isSafeCount(x.epoch) ||
    typeof x.since !== 'string' ||
    !isSafeCount(x.queued) ||
    !isSafeCount(x.running) ||
    (x.finished !== undefined && !isSafeCount(x.finished)) ||
    !isObject(x.workers)
  ) {
    throw errors.BAD_MESSAGE('boss status needs { epoch, since, queued, running, finished?, workers }')
  }
  const workers: Record<string, number> = {}
  for (const [id, n] of Object.entries(x.workers)) if (isSafeCount(n)) workers[id] = n
  // `finished` is absent in a report from a boss of an older build
  const finished = x.finished ?? 0
  const reply: BossStatusReply = {
    epoch: x.epoch,
    since: x.since,
    queued: x.queued,
    running: x.running,
    finished,
    workers,
  }
  if (isObject(x.functions)) {
    reply.functions = {}
    for (const [fn, n] of Object.entries(x.functions)) if (isSafeCount(n)) reply.functions[fn] = n
  }
  return reply
}
