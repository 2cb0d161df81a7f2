/**
 * Messages between the API, the boss and the workers (NATS, inside the runtime's Envelope).
 * Every message a boss sends carries its fencing epoch; receivers refuse one older than the
 * newest they have seen (CONTRACT guarantee 1, REFERENCE §2.6).
 */
import type { Job, JobError } from './jobs/model.js'

export const BOSS = 'boss'
/** Registry service under which workers that accept jobs advertise themselves. */
export const WORKER_SERVICE = 'worker'

export const MSG = {
  /** boss → worker (request): run these jobs. */
  dispatch: 'job.dispatch',
  /** boss → worker: abort a running job (cancel). */
  cancel: 'job.cancel',
  /** boss → worker (request): what are you running, which results are unacknowledged? */
  inventory: 'worker.inventory',
  /** anyone → worker (request): live counters for GET /cluster. */
  status: 'worker.status',
  /** worker → boss (request): finished attempts; the reply acknowledges them. */
  results: 'job.results',
  /** API → boss (request): cancel a job. */
  cancelJob: 'boss.cancel',
  /** API → boss (request): list jobs from the boss's index. */
  listJobs: 'boss.list',
  /** API → boss (request): boss state (epoch, queue size, per-worker running counts). */
  bossStatus: 'boss.status',
} as const

/** What a worker advertises in the registry and in its node entry. */
export interface WorkerMeta {
  role: 'worker' | 'boss'
  functions: string[]
  capacity: number
}

export interface DispatchBody {
  epoch: number
  jobs: Job[]
}

export type RefusalReason = 'stale-epoch' | 'unknown-epoch' | 'full' | 'unknown-function' | 'draining'

export interface DispatchReply {
  /** Per job, in order: accepted, or the reason it was refused. */
  answers: ({ id: string; accepted: true } | { id: string; accepted: false; reason: RefusalReason })[]
}

export interface CancelBody {
  epoch: number
  jobId: string
}

export type AttemptOutcome =
  | { ok: true; result: unknown }
  | { ok: false; error: JobError; /** the worker gave the job back (shutdown): requeue without counting a failure */ handedBack?: boolean }

/** One finished attempt, as reported by the worker that ran it. */
export interface AttemptResult {
  jobId: string
  attempt: number
  /** The epoch of the dispatch that started this attempt. */
  epoch: number
  worker: string
  startedAt: string
  finishedAt: string
  outcome: AttemptOutcome
}

export interface ResultsBody {
  results: AttemptResult[]
}

export interface ResultsReply {
  /** Job ids whose results are durably recorded (or known to be obsolete): the worker forgets them. */
  acked: string[]
}

export interface InventoryBody {
  epoch: number
}

export interface RunningAttempt {
  jobId: string
  attempt: number
  epoch: number
  startedAt: string
}

export interface InventoryReply {
  worker: string
  running: RunningAttempt[]
  results: AttemptResult[]
}

export interface WorkerStatusReply {
  id: string
  running: number
  capacity: number
  functions: string[]
  draining: boolean
}

export interface CancelJobBody {
  id: string
}

export interface ListJobsBody {
  state?: string
  function?: string
  limit: number
}

export interface BossStatusReply {
  epoch: number
  since: string
  queued: number
  running: number
  workers: Record<string, number>
}

