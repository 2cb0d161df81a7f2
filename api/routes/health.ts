/**
 * GET /healthz (liveness: 200 while the process can answer) and GET /readyz (readiness: 200 when
 * ZooKeeper and NATS are connected, else 503 naming what is down). Never behind auth.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { errors } from '../../runner/errors.js'
import { HealthSchema } from '../schemas.js'
import type { HealthView, JobService } from '../service.js'
import { errorResponses } from './responses.js'

export interface HealthRoutesOptions {
  service: JobService
}

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, opts) => {
  app.get(
    '/healthz',
    { schema: { tags: ['health'], summary: 'Liveness', response: { 200: HealthSchema } } },
    async () => ({ status: 'ok' }),
  )

  app.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: ZooKeeper and NATS connected',
        response: { 200: HealthSchema, ...errorResponses(503) },
      },
    },
    async () => {
      let health: HealthView
      try {
        health = opts.service.health()
      } catch (err) {
        throw errors.UNAVAILABLE('not ready: health check failed', { cause: err, details: { zk: false, nats: false } })
      }
      const zk = health.zk === true
      const nats = health.nats === true
      if (zk && nats) return { status: 'ready', zk, nats }
      const down = [zk ? null : 'ZooKeeper', nats ? null : 'NATS'].filter((s) => s !== null)
      throw errors.UNAVAILABLE(`not ready: ${down.join(' and ')} not connected`, { details: { zk, nats } })
    },
  )
}
