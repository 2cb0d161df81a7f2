/**
 * Builds the HTTP API (README "HTTP API") as a Fastify instance that is not listening: the
 * caller (api/main.ts) listens, tests use `inject()`. The API reaches the cluster only through
 * the JobService it is given.
 *
 * Validation: typebox's compiled checks (validator.ts). Bodies are checked exactly as sent (no
 * coercion, no stripping: `additionalProperties: false` makes an unknown property a 400); query
 * strings and path parameters are converted from strings first, strictly. Fastify's Ajv is not used; its
 * options are still set to non-mutating ones so that a future route-level compiler cannot start
 * silently dropping fields.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RawServerDefault } from 'fastify'
import { errors } from '../runner/errors.js'
import type { Logger } from '../runner/logger.js'
import { bearerAuth } from './auth.js'
import { installJsonParser } from './body-parser.js'
import { frameworkErrorHandler, installErrorHandling } from './error-handler.js'
import { registerRateLimit, type RateLimitSettings } from './rate-limit.js'
import { clusterRoutes } from './routes/cluster.js'
import { healthRoutes } from './routes/health.js'
import { jobRoutes } from './routes/jobs.js'
import { eventRoutes } from './routes/events.js'
import { uiRoutes } from './routes/ui.js'
import { scheduleRoutes } from './routes/schedules.js'
import { functionRoutes } from './routes/functions.js'
import type { FunctionService } from './function-service.js'
import type { ScheduleService } from './schedule-service.js'
import type { ClusterEventsView } from './cluster-events.js'
import { metricsRoutes, timeRequests } from './routes/metrics.js'
import { ApiMetrics } from '../runner/index.js'
import type { JobService } from './service.js'
import { validatorCompiler } from './validator.js'

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024
export const DEFAULT_MAX_WAIT_MS = 60_000
/** A whole request (headers and body) must arrive within this; else 408 and the socket is closed (slowloris). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000
/** An idle keep-alive connection is closed after this (Fastify's default: above common load balancers' 60 s). */
export const DEFAULT_KEEP_ALIVE_TIMEOUT_MS = 72_000
/** Socket inactivity limit on top of the longest `?wait=`: a connection silent for longer is closed. */
export const CONNECTION_TIMEOUT_MARGIN_MS = 60_000
/** Version of the HTTP API in the OpenAPI document (not the package version). */
export const API_VERSION = '1.0.0'

export interface BuildAppOptions {
  /** The cluster, behind the narrow interface. */
  service: JobService
  /** Cluster events and the leadership history (api/cluster-events.ts). */
  events: ClusterEventsView
  /** Root logger; the app logs under `{ component: 'api' }`. */
  logger: Logger
  /** Largest request body. @defaultValue 1 MiB */
  bodyLimitBytes?: number
  /**
   * Prometheus metrics (`GET /metrics`); api/main.ts passes one with the cluster gauges; `false`:
   * no /metrics route and nothing counted (API_METRICS=false).
   * @defaultValue a registry of this app's own (HTTP, submits, process metrics)
   */
  metrics?: ApiMetrics | false
  /** The schedule routes' service; absent: no schedule routes. */
  schedules?: ScheduleService
  /** The function routes' service (limits); absent: no function routes. */
  functions?: FunctionService
  /** Bearer tokens; non-empty → job routes, /cluster and /metrics require one. @defaultValue none (auth off) */
  apiTokens?: readonly string[]
  /** Per-client limit on the submit routes. @defaultValue off */
  rateLimit?: RateLimitSettings
  /** Largest `?wait=` of POST /jobs. @defaultValue 60000 */
  maxWaitMs?: number
  /**
   * Time for a client to send a whole request, headers and body; a slower or stalled one gets 408 and
   * its socket is closed, checked every quarter of this (at most every 5 s). @defaultValue 10000
   */
  requestTimeoutMs?: number
  /** Idle keep-alive connections are closed after this. @defaultValue 72000 */
  keepAliveTimeoutMs?: number
  /**
   * A socket with no traffic for this long is closed (a held `?wait=` request is silent, so this must
   * exceed maxWaitMs). @defaultValue maxWaitMs + 60000
   */
  connectionTimeoutMs?: number
}

export type BosunApp = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>

function positiveInt(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min)
    throw errors.CONFIG(`buildApp: ${name} must be an integer ≥ ${min}, got ${value}`)
  return value
}

export function buildApp(opts: BuildAppOptions): BosunApp {
  const bodyLimit = positiveInt('bodyLimitBytes', opts.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES, 1)
  const maxWaitMs = positiveInt('maxWaitMs', opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS, 0)
  const requestTimeout = positiveInt('requestTimeoutMs', opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS, 1)
  const keepAliveTimeout = positiveInt(
    'keepAliveTimeoutMs',
    opts.keepAliveTimeoutMs ?? DEFAULT_KEEP_ALIVE_TIMEOUT_MS,
    1,
  )
  const connectionTimeout = positiveInt(
    'connectionTimeoutMs',
    opts.connectionTimeoutMs ?? maxWaitMs + CONNECTION_TIMEOUT_MARGIN_MS,
    maxWaitMs + 1,
  )
  const tokens = Object.freeze([...(opts.apiTokens ?? [])].filter((t) => t !== ''))
  const rateLimit =
    opts.rateLimit === undefined
      ? undefined
      : Object.freeze({
          max: positiveInt('rateLimit.max', opts.rateLimit.max, 1),
          timeWindowMs: positiveInt('rateLimit.timeWindowMs', opts.rateLimit.timeWindowMs, 1),
        })
  const authOn = tokens.length > 0

  const app = Fastify({
    // the assertion picks Fastify's logger type parameter (BosunApp's); tsc fails without it
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: opts.logger.child({ component: 'api' }) as FastifyBaseLogger,
    // One log line per request is too much at thousands of jobs/s; errors are still logged.
    // (through a LogController: the bare `disableRequestLogging` option is deprecated, FSTDEP023)
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    // Bodies with __proto__ / constructor.prototype are refused (400), see body-parser.ts.
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
    frameworkErrors: frameworkErrorHandler,
    return503OnClosing: true,
    // Slow or half-sent requests (slowloris) must not hold sockets: Node answers 408 and closes a
    // request not fully received in time; it checks open connections every `connectionsCheckingInterval`.
    requestTimeout: requestTimeout,
    keepAliveTimeout: keepAliveTimeout,
    connectionTimeout: connectionTimeout,
    http: {
      headersTimeout: requestTimeout,
      requestTimeout: requestTimeout,
      connectionsCheckingInterval: Math.min(5000, Math.max(100, Math.floor(requestTimeout / 4))),
    },
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.setValidatorCompiler(validatorCompiler)
  installJsonParser(app)
  installErrorHandling(app, bodyLimit)
  const metrics = opts.metrics === false ? undefined : (opts.metrics ?? new ApiMetrics())
  if (metrics) timeRequests(app, metrics)

  app.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'bosun',
        version: API_VERSION,
        description:
          'A serverless-style job runner: submit jobs to named functions, read their state, watch the cluster.',
      },
      tags: [
        { name: 'jobs', description: 'submit, read, list and cancel jobs' },
        { name: 'cluster', description: 'the boss and the workers' },
        { name: 'schedules', description: 'cron schedules the boss fires, once per due time' },
        { name: 'functions', description: 'the functions workers run, and their concurrency and rate limits' },
        { name: 'health', description: 'liveness and readiness' },
        { name: 'metrics', description: 'Prometheus metrics' },
      ],
      components: authOn ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {},
    },
  })
  app.register(fastifySwaggerUi, { routePrefix: '/docs' })
  registerRateLimit(app, rateLimit)

  app.register(healthRoutes, { service: opts.service })
  app.register(uiRoutes) // the dashboard page: public, it holds no data (its data calls are authenticated)
  app.register(async (scope) => {
    if (authOn) scope.addHook('onRequest', bearerAuth(tokens))
    await scope.register(jobRoutes, { service: opts.service, maxWaitMs, rateLimit, authOn, metrics })
    await scope.register(clusterRoutes, { service: opts.service, authOn })
    if (opts.schedules) await scope.register(scheduleRoutes, { schedules: opts.schedules, authOn })
    if (opts.functions) await scope.register(functionRoutes, { functions: opts.functions, authOn })
    await scope.register(eventRoutes, { events: opts.events, authOn })
    if (metrics) await scope.register(metricsRoutes, { metrics, authOn })
  })
  return app
}
