/**
 * GET /metrics: the API process's Prometheus metrics (runner/metrics/api-metrics.ts) in the text
 * format, behind bearer auth when tokens are set, like the other non-health routes. Also the
 * onResponse hook that times every request by route pattern (never the raw URL): Fastify's own
 * elapsed time, one cached histogram child's observe per request.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import type { ApiMetrics } from '../../runner/index.js'
import type { BosunApp } from '../app.js'
import { errorResponses, security } from './responses.js'

export interface MetricsRoutesOptions {
  metrics: ApiMetrics
  authOn: boolean
}

/** Time every answered request (root hook: it sees every route, and requests no route matched). */
export function timeRequests(app: BosunApp, metrics: ApiMetrics): void {
  app.addHook('onResponse', (request, reply, done) => {
    metrics.httpRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
}

export const metricsRoutes: FastifyPluginAsyncTypebox<MetricsRoutesOptions> = async (app, opts) => {
  app.get(
    '/metrics',
    {
      schema: {
        tags: ['metrics'],
        ...security(opts.authOn),
        summary: 'Prometheus metrics of this API process (text format)',
        description:
          'HTTP request durations by route, jobs submitted per function, the cluster gauges this API knows ' +
          '(workers, boss epoch, queued and running jobs), connection state and Node process metrics.',
        response: {
          200: {
            description: 'Prometheus text exposition format 0.0.4',
            content: { 'text/plain': { schema: Type.String() } },
          },
          ...errorResponses(401),
        },
      },
    },
    async (_request, reply) => {
      const text = await opts.metrics.text()
      return reply.type(opts.metrics.contentType).header('cache-control', 'no-store').send(text)
    },
  )
}
