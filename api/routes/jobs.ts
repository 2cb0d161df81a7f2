/**
 * The job routes (README "HTTP API"): submit one, submit a batch, read one, list, cancel.
 * Requests arrive validated (api/schemas.ts); every answer about a job goes through `publicJob`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { errors } from '../../runner/errors.js'
import { isFinal, publicJob, type Job } from '../../jobs/model.js'
import { submitRouteConfig, type RateLimitSettings } from '../rate-limit.js'
import {
  BatchBodySchema,
  BatchResultSchema,
  BulkRetryBodySchema,
  BulkRetryResultSchema,
  RetryBodySchema,
  DEFAULT_LIST_LIMIT,
  JobIdParamsSchema,
  JobListSchema,
  JobLogsSchema,
  JobSchema,
  JobSpecSchema,
  ListQuerySchema,
  readQuerySchema,
  submitQuerySchema,
} from '../schemas.js'
import { JOB_ID_PATTERN, type JobQuery, type JobService } from '../service.js'
import { errorResponses, security } from './responses.js'
import type { ApiMetrics } from '../../runner/index.js'
import type { BulkRetryQuery, RetryOptions } from '../redrive.js'

/** Default `limit` of POST /jobs/retry. */
const DEFAULT_RETRY_LIMIT = 100

export interface JobRoutesOptions {
  service: JobService
  /** Upper bound of `?wait=` (API_MAX_WAIT_MS). */
  maxWaitMs: number
  rateLimit?: RateLimitSettings | undefined
  /** Bearer auth is on (documents the security requirement). */
  authOn: boolean
  /** Counts accepted submits per function (bosun_jobs_submitted_total). */
  metrics?: ApiMetrics | undefined
}

const notFound = (id: string) =>
  errors.JOB_NOT_FOUND(`job ${JSON.stringify(id.length > 128 ? `${id.slice(0, 128)}…` : id)} not found`)

export const jobRoutes: FastifyPluginAsyncTypebox<JobRoutesOptions> = async (app, opts) => {
  const { service, maxWaitMs } = opts
  const tags = ['jobs']
  const sec = security(opts.authOn)

  /** The service is the only source of ids the API hands out; anything else is unknown. */
  const lookup = async (id: string, find: (id: string) => Promise<Job | null>): Promise<Job> => {
    if (!JOB_ID_PATTERN.test(id)) throw notFound(id)
    const job = await find(id)
    if (job === null) throw notFound(id)
    return job
  }

  app.post(
    '/jobs',
    {
      config: submitRouteConfig(opts.rateLimit),
      schema: {
        tags,
        ...sec,
        summary: 'Submit a job',
        description:
          '202 with the job once it is durably stored. With `?wait=<ms>` the request is held until the job ends ' +
          'or ms pass: 200 with the finished job, else 202 with its current state. ' +
          'Same `idempotencyKey` → same job, run once.',
        body: JobSpecSchema,
        querystring: submitQuerySchema(maxWaitMs),
        response: {
          200: { ...JobSchema, description: 'the job finished within `wait`' },
          202: { ...JobSchema, description: 'the job is stored (and not finished yet)' },
          ...errorResponses(400, 401, 404, 409, 413, 415, 429, 503),
        },
      },
    },
    async (request, reply) => {
      const wait = request.query.wait
      const { job, finished } = await service.submit(request.body, wait === undefined ? {} : { waitMs: wait })
      opts.metrics?.submitted(request.body.function)
      if (!finished) reply.code(202).header('location', `/jobs/${encodeURIComponent(job.id)}`)
      else reply.code(200)
      return publicJob(job)
    },
  )

  app.post(
    '/jobs/batch',
    {
      config: submitRouteConfig(opts.rateLimit),
      schema: {
        tags,
        ...sec,
        summary: 'Submit up to 1,000 jobs',
        description:
          '202 with `{ id, state }` per job, in order, once all are durably stored. The whole batch is validated ' +
          'first and rejected whole on a bad item: 400 naming its index (`details.index`).',
        body: BatchBodySchema,
        response: { 202: BatchResultSchema, ...errorResponses(400, 401, 404, 409, 413, 415, 429, 503) },
      },
    },
    async (request, reply) => {
      const jobs = await service.submitBatch(request.body.jobs)
      if (opts.metrics) for (const spec of request.body.jobs) opts.metrics.submitted(spec.function)
      reply.code(202)
      return { jobs: jobs.map((j) => ({ id: j.id, state: j.state })) }
    },
  )

  app.get(
    '/jobs/:id',
    {
      schema: {
        tags,
        ...sec,
        summary: 'Read a job',
        description:
          'With `?wait=<ms>` (a long poll) the answer waits until the job is final or ms pass; ' +
          'it is 200 with the job as it is then either way.',
        params: JobIdParamsSchema,
        querystring: readQuerySchema(maxWaitMs),
        response: { 200: JobSchema, ...errorResponses(400, 401, 404, 503) },
      },
    },
    async (request) => publicJob(await lookup(request.params.id, (id) => service.get(id, request.query.wait ?? 0))),
  )

  app.get(
    '/jobs/:id/logs',
    {
      schema: {
        tags,
        ...sec,
        summary: "Read a job's kept log lines",
        description:
          'The last ctx.log lines of the job across its attempts, oldest first (at most JOB_LOG_MAX_LINES and ' +
          'JOB_LOG_MAX_BYTES; `truncated` when earlier ones were dropped). A job that never logged: no lines. ' +
          'Written by its worker at most once a second while an attempt runs, and completely before its result.',
        params: JobIdParamsSchema,
        response: { 200: JobLogsSchema, ...errorResponses(400, 401, 404, 503) },
      },
    },
    async (request) => {
      const id = request.params.id
      if (!JOB_ID_PATTERN.test(id)) throw notFound(id)
      const logs = await service.logs(id)
      if (logs === null) throw notFound(id)
      return logs
    },
  )

  app.get(
    '/jobs',
    {
      schema: {
        tags,
        ...sec,
        summary: 'List jobs, newest first',
        querystring: ListQuerySchema,
        response: { 200: JobListSchema, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => {
      const q: JobQuery = { limit: request.query.limit ?? DEFAULT_LIST_LIMIT }
      if (request.query.state !== undefined) q.state = request.query.state
      if (request.query.function !== undefined) q.function = request.query.function
      if (request.query.cursor !== undefined) q.cursor = request.query.cursor
      const page = await service.list(q)
      const jobs = page.jobs.map(publicJob)
      return page.next !== undefined ? { jobs, next: page.next } : { jobs }
    },
  )

  app.delete(
    '/jobs/:id',
    {
      schema: {
        tags,
        ...sec,
        summary: 'Cancel a job',
        description:
          'A queued job never runs; a running one gets its signal aborted. 200 with the job when it is final ' +
          '(cancelled now, or already finished: returned unchanged); ' +
          '202 when cancellation of a running job is under way.',
        params: JobIdParamsSchema,
        response: {
          200: { ...JobSchema, description: 'the job is final' },
          202: { ...JobSchema, description: 'cancellation requested, the job is still running' },
          ...errorResponses(400, 401, 404, 503),
        },
      },
    },
    async (request, reply) => {
      const job = await lookup(request.params.id, (id) => service.cancel(id))
      reply.code(isFinal(job.state) ? 200 : 202)
      return publicJob(job)
    },
  )

  app.post(
    '/jobs/:id/retry',
    {
      schema: {
        tags,
        ...sec,
        summary: 'Retry a failed or cancelled job',
        description:
          'Queues the job again for a new run: same id, attempts counted from 0, its attempt history kept ' +
          '(`run` counts the retries). 409 BOSUN_ERR_JOB_NOT_RETRYABLE for a queued, running or succeeded job. ' +
          'The same `requestId` answers the same and never starts a second run.',
        params: JobIdParamsSchema,
        body: Type.Optional(RetryBodySchema),
        response: { 202: JobSchema, ...errorResponses(400, 401, 404, 409, 503) },
      },
      // No body at all is the same as {} (curl -X POST …/retry).
      preValidation: async (request) => {
        request.body ??= {}
      },
    },
    async (request, reply) => {
      const body = request.body ?? {}
      const opts: RetryOptions = {}
      if (body.maxAttempts !== undefined) opts.maxAttempts = body.maxAttempts
      if (body.requestId !== undefined) opts.requestId = body.requestId
      const job = await lookup(request.params.id, (id) => service.retry(id, opts))
      reply.code(202)
      return publicJob(job)
    },
  )

  app.post(
    '/jobs/retry',
    {
      schema: {
        tags,
        ...sec,
        summary: 'Retry failed or cancelled jobs in bulk (redrive)',
        description:
          'Queues again up to `limit` jobs that ended in `state` (of `function`, finished before `before`), ' +
          'newest finished first; answers how many. The same `requestId` answers the same.',
        body: BulkRetryBodySchema,
        response: { 200: BulkRetryResultSchema, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => {
      const b = request.body
      const q: BulkRetryQuery = { state: b.state, limit: b.limit ?? DEFAULT_RETRY_LIMIT }
      if (b.function !== undefined) q.function = b.function
      if (b.before !== undefined) q.before = b.before
      if (b.maxAttempts !== undefined) q.maxAttempts = b.maxAttempts
      if (b.requestId !== undefined) q.requestId = b.requestId
      return service.retryMany(q)
    },
  )
}
