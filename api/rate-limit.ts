/**
 * Optional per-client rate limit on the submit routes (POST /jobs, POST /jobs/batch) through
 * @fastify/rate-limit. A client is its bearer token when auth is on, else its IP address. The
 * limit is checked in `preParsing`: after authentication, before a body is read. Over the limit:
 * 429 BOSUN_ERR_RATE_LIMITED with `Retry-After`, in the common error shape.
 */
import fastifyRateLimit from '@fastify/rate-limit'
import type { FastifyInstance, FastifyContextConfig } from 'fastify'
import { errors } from '../runner/errors.js'
import { authenticatedClient } from './auth.js'

export interface RateLimitSettings {
  /** Requests a client may make per window on each submit route. */
  max: number
  timeWindowMs: number
}

/** Register the plugin (routes opt in through `submitRouteConfig`). No-op without settings. */
export function registerRateLimit(app: FastifyInstance, settings: RateLimitSettings | undefined): void {
  if (settings === undefined) return
  app.register(fastifyRateLimit, {
    global: false,
    hook: 'preParsing',
    max: settings.max,
    timeWindow: settings.timeWindowMs,
    keyGenerator: (request) => authenticatedClient(request) ?? `ip:${request.ip}`,
    errorResponseBuilder: (_request, ctx) =>
      errors.RATE_LIMITED(`rate limit exceeded: at most ${ctx.max} requests per ${ctx.after}`, {
        retryAfterSeconds: Math.max(1, Math.ceil(ctx.ttl / 1000)),
      }),
  })
}

/** Route `config` that turns the limit on for one route (empty when rate limiting is off). */
export function submitRouteConfig(settings: RateLimitSettings | undefined): FastifyContextConfig {
  return settings === undefined ? {} : { rateLimit: { max: settings.max, timeWindow: settings.timeWindowMs } }
}
