/**
 * GET /cluster: the elected boss and the live workers; GET /cluster/stats: the boss's last load
 * report (queue depth, running, jobs finished this term — the dashboard derives throughput from it).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ClusterLoadSchema, ClusterViewSchema } from '../schemas.js'
import type { JobService } from '../service.js'
import { errorResponses, security } from './responses.js'

export interface ClusterRoutesOptions {
  service: JobService
  authOn: boolean
}

export const clusterRoutes: FastifyPluginAsyncTypebox<ClusterRoutesOptions> = async (app, opts) => {
  app.get(
    '/cluster',
    {
      schema: {
        tags: ['cluster'],
        ...security(opts.authOn),
        summary: 'The boss (null when none is elected) and the workers',
        response: { 200: ClusterViewSchema, ...errorResponses(401, 503) },
      },
    },
    async () => opts.service.cluster(),
  )
  app.get(
    '/cluster/stats',
    {
      schema: {
        tags: ['cluster'],
        ...security(opts.authOn),
        summary: "The acting boss's last load report: queued, running, jobs finished this term",
        response: { 200: ClusterLoadSchema, ...errorResponses(401) },
      },
    },
    async () => opts.service.load(),
  )
}
