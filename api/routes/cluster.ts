/** GET /cluster: the elected boss and the live workers. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ClusterViewSchema } from '../schemas.js'
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
}
