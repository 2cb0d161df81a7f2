/**
 * Redrive on the API's side (POST /jobs/:id/retry, POST /jobs/retry): pick the jobs, ask the
 * acting boss to reopen them (worker/boss/redrives.ts — only the boss writes job records), and
 * answer. A request id makes either request idempotent: the boss answers a repeated retry of a job
 * as the first, and the answer of a bulk request is kept in the store and answered again.
 */
import { randomUUID } from 'node:crypto'
import { errors } from '../runner/errors.js'
import type { Job, JobState } from '../jobs/model.js'
import { isObject } from '../jobs/parse.js'
import {
  MAX_RETRY_JOBS,
  parseRetryJobsReply,
  RETRY_JOBS,
  type RetryJobsBody,
  type RetryOutcome,
} from '../jobs/retry-protocol.js'
import type { Transport } from '../runner/index.js'
import { StoreDeadline } from './store-deadline.js'
import type { ListPage, ListQuery } from '../jobs/streams/reader.js'

/** Most finished jobs a bulk retry examines to find its matches (newest first). */
export const MAX_EXAMINED = 50_000

export interface RetryOptions {
  /** Attempts of the new run (default: the job's own maxAttempts). */
  maxAttempts?: number
  requestId?: string
}

export interface BulkRetryQuery extends RetryOptions {
  state: Extract<JobState, 'failed' | 'cancelled'>
  function?: string
  /** Only jobs that finished before this time (ISO 8601). */
  before?: string
  /** 1..1000. */
  limit: number
}

export interface BulkRetryAnswer {
  /** How many jobs were reopened. */
  retried: number
  /** Their ids. */
  ids: string[]
}

export interface RedrivePorts {
  get(id: string): Promise<Job | null>
  list(q: ListQuery): Promise<ListPage>
  /** Ask the acting boss (NO_BOSS when none answers). */
  askBoss(body: RetryJobsBody): Promise<RetryOutcome[]>
  retryAnswer(requestId: string): Promise<unknown>
  keepRetryAnswer(requestId: string, answer: BulkRetryAnswer): Promise<unknown>
}

/** A retry of 1,000 jobs writes 2,000 records: the boss gets time. */
const RETRY_TIMEOUT_MS = 30_000

/** The ports of one retry request: store reads under one deadline, and the acting boss over NATS. */
export function redrivePorts(d: {
  store: Pick<RedrivePorts, 'get' | 'list' | 'retryAnswer'> & {
    keepRetryAnswer(requestId: string, answer: unknown): Promise<unknown>
  }
  transport: Transport
  boss(): Promise<{ address: string }>
}): RedrivePorts {
  const store = new StoreDeadline()
  return {
    get: (id) => store.call(d.store.get(id), 'read'),
    list: (q) => store.call(d.store.list(q), 'listing'),
    retryAnswer: (rid) => store.call(d.store.retryAnswer(rid), 'read of a retry answer'),
    keepRetryAnswer: (rid, a) => store.call(d.store.keepRetryAnswer(rid, a), 'write of a retry answer'),
    askBoss: async (body) => {
      const boss = await d.boss()
      try {
        const reply = await d.transport.request(boss.address, RETRY_JOBS, body, { timeoutMs: RETRY_TIMEOUT_MS })
        return parseRetryJobsReply(reply).results
      } catch (err) {
        throw errors.NO_BOSS('the boss did not answer; try again with the same requestId', {
          cause: err,
          retryAfterSeconds: 1,
        })
      }
    },
  }
}

/** Retry one job; null when unknown (→ 404), JOB_NOT_RETRYABLE (409) unless it ended failed or cancelled. */
export async function retryOne(p: RedrivePorts, id: string, opts: RetryOptions): Promise<Job | null> {
  const body: RetryJobsBody = { ids: [id], requestId: opts.requestId ?? randomUUID() }
  if (opts.maxAttempts !== undefined) body.maxAttempts = opts.maxAttempts
  const [answer] = await p.askBoss(body)
  if (answer?.outcome === 'retried') return answer.job
  if (answer?.outcome === 'conflict') throw notRetryable(id, answer.state)
  if (answer?.outcome === 'busy')
    throw errors.UNAVAILABLE(`job ${id} ended an instant ago; retry shortly`, { retryAfterSeconds: 1 })
  // Not in DONE: unknown, or unfinished and not loaded by the boss yet.
  const job = await p.get(id)
  if (!job) return null
  throw notRetryable(id, job.state)
}

/** Retry every job matching `q` (at most `q.limit`); the same `requestId` answers the same. */
export async function retryMatching(p: RedrivePorts, q: BulkRetryQuery): Promise<BulkRetryAnswer> {
  if (q.requestId !== undefined) {
    const kept = asAnswer(await p.retryAnswer(q.requestId))
    if (kept) return kept
  }
  const requestId = q.requestId ?? randomUUID()
  const ids = await matching(p, q)
  const body: RetryJobsBody = { ids, requestId }
  if (q.maxAttempts !== undefined) body.maxAttempts = q.maxAttempts
  const outcomes = ids.length > 0 ? await p.askBoss(body) : []
  const retried = outcomes.filter((o) => o.outcome === 'retried').map((o) => o.id)
  const answer: BulkRetryAnswer = { retried: retried.length, ids: retried }
  if (q.requestId === undefined) return answer
  return asAnswer(await p.keepRetryAnswer(q.requestId, answer)) ?? answer
}

/** Ids of finished jobs matching `q`, newest finished first. */
async function matching(p: RedrivePorts, q: BulkRetryQuery): Promise<string[]> {
  const before = q.before !== undefined ? Date.parse(q.before) : Infinity
  const limit = Math.min(q.limit, MAX_RETRY_JOBS)
  const ids: string[] = []
  let cursor: string | undefined
  for (let examined = 0; ids.length < limit && examined < MAX_EXAMINED;) {
    const query: ListQuery = { state: q.state, limit: 1000 }
    if (q.function !== undefined) query.function = q.function
    if (cursor !== undefined) query.cursor = cursor
    const page = await p.list(query)
    examined += page.jobs.length
    for (const job of page.jobs) {
      if (ids.length === limit) break
      const finished = job.finishedAt !== undefined ? Date.parse(job.finishedAt) : NaN
      if (job.state === q.state && finished < before) ids.push(job.id)
    }
    if (page.next === undefined) break
    cursor = page.next
  }
  return ids
}

function notRetryable(id: string, state: JobState) {
  return errors.JOB_NOT_RETRYABLE(`job ${id} is ${state}: only a failed or cancelled job can be retried`, {
    details: { id, state },
  })
}

function asAnswer(x: unknown): BulkRetryAnswer | undefined {
  if (!isObject(x) || !Number.isSafeInteger(x.retried) || !Array.isArray(x.ids)) return undefined
  if (!x.ids.every((id) => typeof id === 'string')) return undefined
  return { retried: x.retried as number, ids: x.ids }
}
