/**
 * typebox schemas of the HTTP API: they validate requests, serialise responses and generate the
 * OpenAPI document (/docs). Every request object schema sets `additionalProperties: false`: an
 * unknown property is a 400, never silently dropped (a typo in `maxAttempts` must not run a job
 * with the default). Bodies are validated as sent (no type coercion: `"priority": "5"` is a 400);
 * only query strings and path parameters are converted from strings (see app.ts).
 */
import { Type, type Static } from 'typebox'
import {
  FUNCTION_NAME_PATTERN,
  JOB_STATES,
  MAX_DELAY_MS,
  MAX_MAX_ATTEMPTS,
  MAX_PRIORITY,
  MAX_TIMEOUT_MS,
  MAX_CONCURRENCY_KEY_LENGTH,
  MIN_PRIORITY,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_PRIORITY,
  DEFAULT_TIMEOUT_MS,
  type JobSpec,
  type publicJob,
} from '../jobs/model.js'
import type { ClusterLoadView, ClusterView } from './service.js'
import { ATTEMPT_OUTCOMES } from '../jobs/attempts.js'
import { MAX_REQUEST_ID_LENGTH, MAX_RETRY_JOBS } from '../jobs/retry-protocol.js'
import { CALLBACK_URL_MAX_LENGTH } from '../jobs/callbacks/policy.js'
import { CALLBACK_STATES } from '../jobs/callbacks/store.js'

/** Most jobs one POST /jobs/batch may carry (README "HTTP API"). */
export const MAX_BATCH_SIZE = 1000
/** Default and maximum `limit` of GET /jobs. */
export const DEFAULT_LIST_LIMIT = 100
export const MAX_LIST_LIMIT = 1000
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256

export const JobStateSchema = Type.Enum(JOB_STATES, {
  description: 'queued | running | succeeded | failed | cancelled (the last three are final)',
})

export const FunctionNameSchema = Type.String({
  pattern: FUNCTION_NAME_PATTERN.source,
  description: 'name of a job function: its file name in FUNCTIONS_DIR without extension',
})

/** POST /jobs body, and one item of POST /jobs/batch. */
export const JobSpecSchema = Type.Object(
  {
    function: FunctionNameSchema,
    payload: Type.Optional(Type.Unknown({ description: 'any JSON value, handed to the function' })),
    idempotencyKey: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_IDEMPOTENCY_KEY_LENGTH,
        description: 'same key → same job, run once',
      }),
    ),
    priority: Type.Optional(
      Type.Integer({
        minimum: MIN_PRIORITY,
        maximum: MAX_PRIORITY,
        description: `higher runs first (default ${DEFAULT_PRIORITY})`,
      }),
    ),
    delayMs: Type.Optional(
      Type.Integer({ minimum: 0, maximum: MAX_DELAY_MS, description: 'do not start before this many ms' }),
    ),
    timeoutMs: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_TIMEOUT_MS,
        description: `per-attempt timeout (default ${DEFAULT_TIMEOUT_MS})`,
      }),
    ),
    maxAttempts: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: MAX_MAX_ATTEMPTS,
        description: `attempts before the job fails (default ${DEFAULT_MAX_ATTEMPTS})`,
      }),
    ),
    callbackUrl: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: CALLBACK_URL_MAX_LENGTH,
        description:
          'http(s) URL POSTed the finished job, signed (README "Completion callbacks"); its host must be in ' +
          'BOSUN_CALLBACK_ALLOW, else 400',
      }),
    ),
    concurrencyKey: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_CONCURRENCY_KEY_LENGTH,
        description:
          "the job's key for its function's per-key limits (keyConcurrency, keyRateLimit; e.g. a tenant id); " +
          'keys with queued jobs take turns (README "Limits")',
      }),
    ),
  },
  { additionalProperties: false, title: 'JobSpec' },
)

export const BatchBodySchema = Type.Object(
  { jobs: Type.Array(JobSpecSchema, { minItems: 1, maxItems: MAX_BATCH_SIZE }) },
  { additionalProperties: false, title: 'JobBatch' },
)

const isoTime = (description: string) => Type.String({ format: 'date-time', description })

export const JobErrorSchema = Type.Object(
  { message: Type.String(), code: Type.Optional(Type.String()), name: Type.Optional(Type.String()) },
  { additionalProperties: true },
)

export const AttemptEntrySchema = Type.Object(
  {
    run: Type.Integer({ description: 'the run (0 until the job is retried after it ended)' }),
    attempt: Type.Integer({ description: '1-based attempt number within the run' }),
    worker: Type.Optional(Type.String()),
    epoch: Type.Integer({ description: 'epoch of the boss that dispatched the attempt' }),
    startedAt: Type.Optional(isoTime('when the attempt started')),
    finishedAt: isoTime('when the attempt ended (or was found to have ended)'),
    durationMs: Type.Optional(Type.Integer()),
    outcome: Type.Enum(ATTEMPT_OUTCOMES, {
      description:
        'lost: its worker stopped or vanished; deferred: the function threw RetryLaterError ' +
        '(neither counts as an attempt of the function)',
    }),
    error: Type.Optional(JobErrorSchema),
  },
  { additionalProperties: false, title: 'AttemptEntry' },
)

/** The delivery state of a job's completion callback (GET /jobs/:id, for jobs with a callbackUrl). */
const CallbackViewSchema = Type.Object(
  {
    state: Type.Enum(CALLBACK_STATES, { description: 'pending | delivered | failed' }),
    attempts: Type.Integer({ description: "POSTs made for the job's current run" }),
    lastStatus: Type.Optional(Type.Integer({ description: 'HTTP status of the last attempt' })),
    lastError: Type.Optional(Type.String({ description: 'why the last attempt did not deliver' })),
  },
  { additionalProperties: false },
)

/** A job as the API answers it (`publicJob`: no internal fields). */
export const JobSchema = Type.Object(
  {
    id: Type.String(),
    function: Type.String(),
    state: JobStateSchema,
    attempts: Type.Integer({ description: 'attempts started so far' }),
    maxAttempts: Type.Integer(),
    payload: Type.Unknown(),
    priority: Type.Integer(),
    timeoutMs: Type.Integer(),
    idempotencyKey: Type.Optional(Type.String()),
    result: Type.Optional(Type.Unknown({ description: "the function's result (succeeded)" })),
    error: Type.Optional(JobErrorSchema),
    worker: Type.Optional(
      Type.String({ description: 'id (as in GET /cluster) of the worker running or last running it' }),
    ),
    createdAt: isoTime('when the job was stored'),
    runAt: Type.Optional(isoTime('not before this time (delay, retry backoff)')),
    startedAt: Type.Optional(isoTime('when the current / last attempt started')),
    finishedAt: Type.Optional(isoTime('when the job reached a final state')),
    run: Type.Optional(
      Type.Integer({ description: 'times the job was retried after it ended (POST /jobs/:id/retry); absent: never' }),
    ),
    history: Type.Optional(
      Type.Array(AttemptEntrySchema, { description: 'every attempt that ended, oldest first (at most 100)' }),
    ),
    callbackUrl: Type.Optional(Type.String({ description: 'where the finished job is POSTed' })),
    concurrencyKey: Type.Optional(Type.String({ description: 'its key for per-key limits' })),
    callback: Type.Optional(CallbackViewSchema),
    progress: Type.Optional(
      Type.Unknown({
        description:
          "the last ctx.progress value (a number 0–100 or a small JSON object): the running attempt's while it " +
          "runs (absent until it reports), the last attempt's once the job is final",
      }),
    ),
  },
  { additionalProperties: false, title: 'Job' },
)

export const JobLogLineSchema = Type.Object(
  {
    time: isoTime('when the function logged it'),
    level: Type.Union([Type.Literal('debug'), Type.Literal('info'), Type.Literal('warn'), Type.Literal('error')]),
    msg: Type.String(),
    attempt: Type.Integer({ description: 'the attempt that logged it (1-based)' }),
    run: Type.Optional(Type.Integer({ description: "the job's run (absent: 0)" })),
    fields: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: "the log call's object (at most 1 KiB of JSON, else a preview)",
      }),
    ),
  },
  { additionalProperties: false, title: 'JobLogLine' },
)

export const JobLogsSchema = Type.Object(
  {
    jobId: Type.String(),
    lines: Type.Array(JobLogLineSchema, { description: 'the kept ctx.log lines across attempts, oldest first' }),
    truncated: Type.Boolean({ description: 'earlier lines were dropped (JOB_LOG_MAX_LINES / JOB_LOG_MAX_BYTES)' }),
  },
  { additionalProperties: false, title: 'JobLogs' },
)

export const JobRefSchema = Type.Object({ id: Type.String(), state: JobStateSchema }, { additionalProperties: false })
export const BatchResultSchema = Type.Object(
  { jobs: Type.Array(JobRefSchema) },
  { additionalProperties: false, title: 'JobBatchResult' },
)
export const JobListSchema = Type.Object(
  {
    jobs: Type.Array(JobSchema),
    next: Type.Optional(
      Type.String({ description: 'present when more jobs match: pass it as `cursor` for the next page' }),
    ),
  },
  { additionalProperties: false, title: 'JobList' },
)

export const ClusterViewSchema = Type.Object(
  {
    boss: Type.Union([
      Type.Object(
        {
          id: Type.String(),
          host: Type.String(),
          pid: Type.Integer(),
          epoch: Type.Integer(),
          since: isoTime('when its leadership began'),
        },
        { additionalProperties: false },
      ),
      Type.Null(),
    ]),
    workers: Type.Array(
      Type.Object(
        {
          id: Type.String(),
          host: Type.String(),
          pid: Type.Integer(),
          functions: Type.Array(Type.String()),
          capacity: Type.Integer({ description: 'jobs it runs at once' }),
          running: Type.Integer({ description: 'jobs it runs now' }),
          waiting: Type.Integer({ description: 'jobs dispatched to it ahead of a free slot (prefetch), waiting' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false, title: 'Cluster' },
)

/** Every error answer. `details` carries extra fields (e.g. `{ index }` of a bad batch item). */
export const ErrorSchema = Type.Object(
  {
    statusCode: Type.Integer(),
    code: Type.String({ description: 'stable BOSUN_ERR_… code' }),
    message: Type.String(),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false, title: 'Error' },
)

const maxAttemptsOfRun = Type.Integer({
  minimum: 1,
  maximum: MAX_MAX_ATTEMPTS,
  description: "attempts of the new run (default: the job's own maxAttempts)",
})
const requestIdField = Type.String({
  minLength: 1,
  maxLength: MAX_REQUEST_ID_LENGTH,
  description: 'the same requestId answers the same, and never starts a second run',
})

/** POST /jobs/:id/retry body (optional). */
export const RetryBodySchema = Type.Object(
  { maxAttempts: Type.Optional(maxAttemptsOfRun), requestId: Type.Optional(requestIdField) },
  { additionalProperties: false, title: 'JobRetry' },
)

/** POST /jobs/retry body. */
export const BulkRetryBodySchema = Type.Object(
  {
    state: Type.Enum(['failed', 'cancelled'] as const, { description: 'retry jobs that ended in this state' }),
    function: Type.Optional(FunctionNameSchema),
    before: Type.Optional(Type.String({ format: 'date-time', description: 'only jobs that finished before this' })),
    limit: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_RETRY_JOBS, description: 'most jobs retried (default 100)' }),
    ),
    maxAttempts: Type.Optional(maxAttemptsOfRun),
    requestId: Type.Optional(requestIdField),
  },
  { additionalProperties: false, title: 'JobBulkRetry' },
)

export const BulkRetryResultSchema = Type.Object(
  {
    retried: Type.Integer({ description: 'how many jobs were queued again' }),
    ids: Type.Array(Type.String(), { description: 'their ids' }),
  },
  { additionalProperties: false, title: 'JobBulkRetryResult' },
)

export const JobIdParamsSchema = Type.Object(
  { id: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
)

/** A querystring of `?wait=<ms>` alone, bounded by `maxWaitMs` (API_MAX_WAIT_MS). */
function waitQuerySchema(maxWaitMs: number, what: string) {
  return Type.Object(
    {
      wait: Type.Optional(
        Type.Integer({ minimum: 0, maximum: maxWaitMs, description: `${what} (at most ${maxWaitMs})` }),
      ),
    },
    { additionalProperties: false },
  )
}

/** GET /jobs/:id querystring (a long poll). */
export const readQuerySchema = (maxWaitMs: number) =>
  waitQuerySchema(
    maxWaitMs,
    'answer once the job is final or this many ms passed; either way 200 with the job as it is then',
  )

/** POST /jobs querystring. */
export const submitQuerySchema = (maxWaitMs: number) =>
  waitQuerySchema(
    maxWaitMs,
    'hold the request until the job ends or this many ms pass: 200 with the finished job, else 202',
  )

export const ListQuerySchema = Type.Object(
  {
    state: Type.Optional(JobStateSchema),
    function: Type.Optional(FunctionNameSchema),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_LIST_LIMIT, default: DEFAULT_LIST_LIMIT })),
    cursor: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 64,
        description: 'the `next` of the previous page; a malformed one is a 400',
      }),
    ),
  },
  { additionalProperties: false },
)

export const HealthSchema = Type.Object(
  { status: Type.String(), zk: Type.Optional(Type.Boolean()), nats: Type.Optional(Type.Boolean()) },
  { additionalProperties: false },
)

// Compile-time checks: the schemas and the domain types stay in step.
type Equal<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Assert<T extends true> = T
type _SpecMatches = Assert<Equal<Required<Static<typeof JobSpecSchema>>, Required<JobSpec>>>
export const ClusterLoadSchema = Type.Object(
  {
    at: Type.Union([isoTime('when the API received the report'), Type.Null()]),
    epoch: Type.Union([Type.Integer({ description: 'the reporting boss' }), Type.Null()]),
    since: Type.Union([isoTime("when the reporting boss's term began"), Type.Null()]),
    queued: Type.Integer({ description: 'jobs waiting to run' }),
    running: Type.Integer({ description: 'jobs running' }),
    finished: Type.Integer({ description: 'jobs this boss term finalized (cumulative; 0 at each new term)' }),
  },
  { additionalProperties: false, title: 'ClusterLoad' },
)

type _ClusterMatches = Assert<Equal<Static<typeof ClusterViewSchema>, ClusterView>>
type _LoadMatches = Assert<Equal<Static<typeof ClusterLoadSchema>, ClusterLoadView>>
type _JobKeysMatch = Assert<Equal<keyof Static<typeof JobSchema>, keyof ReturnType<typeof publicJob>>>
type _JobAssignable = Assert<ReturnType<typeof publicJob> extends Static<typeof JobSchema> ? true : false>
