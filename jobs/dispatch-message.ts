/**
 * The boss's dispatch to a worker (a message of jobs/protocol.ts, which re-exports this file): the
 * fields of each job a worker runs it with, and the refusals it may answer. A job whose submitter
 * waits for it may carry `final`: the record the worker writes that attempt's success from itself
 * (worker/agent/own-final.ts), a leg earlier than the boss could.
 */
import { errors } from '../runner/errors.js'
import { isValidJobId, jobShapeProblem } from './store-codec.js'
import type { Job } from './model.js'
import { isObject, isSafeCount } from './parse.js'

// ---- boss → worker: dispatch --------------------------------------------------------------------

export interface DispatchBody {
  epoch: number
  jobs: DispatchedJob[]
}

export type RefusalReason = 'stale-epoch' | 'unknown-epoch' | 'full' | 'unknown-function' | 'draining' | 'malformed'

export type DispatchAnswer = { id: string; accepted: true } | { id: string; accepted: false; reason: RefusalReason }

export interface DispatchReply {
  /** Per job, in order: accepted, or the reason it was refused. */
  answers: DispatchAnswer[]
}

/** The fields of a dispatched job a worker needs to run it. */
export interface DispatchedJob {
  id: string
  function: string
  attempts: number
  payload: unknown
  timeoutMs: number
  /** The payload is not in the message (too large for the boss to keep): read it from the job store. */
  payloadRef?: true
  /** The job's run (absent: 0; a retried job's next run: POST /jobs/:id/retry). */
  run?: number
  /** When the boss started this attempt (its flow gate's clock; informative, the worker keeps its own). */
  startedAt?: string
  /**
   * The worker may write this attempt's final record itself if it succeeds: the job's running record
   * as the boss holds it, `payload` null (the dispatch's own payload goes in its place).
   */
  final?: Job
}

/** The `final` of a dispatched job `id`, when it is a running record of that job (else undefined: ignored). */
function finalBasisFrom(x: unknown, id: string): Job | undefined {
  if (!isObject(x) || x.id !== id || x.state !== 'running' || jobShapeProblem(x) !== null) return undefined
  return x as unknown as Job
}

export function parseDispatchBody(x: unknown): { epoch: number; jobs: unknown[] } {
  if (!isObject(x) || !isSafeCount(x.epoch) || !Array.isArray(x.jobs))
    throw errors.BAD_MESSAGE('dispatch needs { epoch, jobs[] }')
  return { epoch: x.epoch, jobs: x.jobs }
}

/** One job of a dispatch, or undefined when it cannot be run (the worker refuses it as malformed). */
export function parseDispatchedJob(x: unknown): DispatchedJob | undefined {
  if (
    !isObject(x) ||
    !isValidJobId(x.id) ||
    typeof x.function !== 'string' ||
    !isSafeCount(x.attempts) ||
    x.attempts < 1
  )
    return undefined
  if (!isSafeCount(x.timeoutMs) || x.timeoutMs < 1) return undefined
  const job: DispatchedJob = {
    id: x.id,
    function: x.function,
    attempts: x.attempts,
    payload: x.payload ?? null,
    timeoutMs: x.timeoutMs,
  }
  if (x.payloadRef === true) job.payloadRef = true
  if (x.run !== undefined && !isSafeCount(x.run)) return undefined
  if (x.run) job.run = x.run
  const basis = x.final === undefined ? undefined : finalBasisFrom(x.final, x.id)
  if (basis) job.final = basis
  return job
}

const REFUSALS: readonly RefusalReason[] = [
  'stale-epoch',
  'unknown-epoch',
  'full',
  'unknown-function',
  'draining',
  'malformed',
]

export function parseDispatchReply(x: unknown): DispatchReply {
  if (!isObject(x) || !Array.isArray(x.answers)) throw errors.BAD_MESSAGE('dispatch reply needs { answers[] }')
  const answers: DispatchAnswer[] = []
  for (const a of x.answers) {
    if (!isObject(a) || typeof a.id !== 'string') continue
    if (a.accepted === true) answers.push({ id: a.id, accepted: true })
    else
      answers.push({
        id: a.id,
        accepted: false,
        reason: REFUSALS.includes(a.reason as RefusalReason) ? (a.reason as RefusalReason) : 'malformed',
      })
  }
  return { answers }
}
