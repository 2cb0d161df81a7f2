/**
 * The function routes (README "Limits"): the functions the workers advertise with the limits in
 * force, and an operator's override of a function's limits, kept in JetStream and applied by the
 * acting boss before its next dispatch (api/function-service.ts).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  FunctionListSchema,
  FunctionParamsSchema,
  FunctionViewSchema,
  LimitsOverrideSchema,
} from '../function-schemas.js'
import type { FunctionService } from '../function-service.js'
import { errorResponses, security } from './responses.js'

export interface FunctionRoutesOptions {
  functions: FunctionService
  authOn: boolean
}

export const functionRoutes: FastifyPluginAsyncTypebox<FunctionRoutesOptions> = async (app, opts) => {
  const service = opts.functions
  const common = { tags: ['functions'], ...security(opts.authOn) }

  app.get(
    '/functions',
    {
      schema: {
        ...common,
        summary: 'Every function, with its limits and running jobs',
        description:
          'Functions live workers advertise (or that have an override): workers, slots, the limits their modules ' +
          "declare, the operator's override, the limits in force, and the running count from the boss's last report.",
        response: { 200: FunctionListSchema, ...errorResponses(401, 503) },
      },
    },
    async () => ({ functions: await service.list() }),
  )

  app.get(
    '/functions/:name',
    {
      schema: {
        ...common,
        summary: 'One function',
        params: FunctionParamsSchema,
        response: { 200: FunctionViewSchema, ...errorResponses(401, 404, 503) },
      },
    },
    async (request) => service.get(request.params.name),
  )

  app.put(
    '/functions/:name/limits',
    {
      schema: {
        ...common,
        summary: "Override a function's limits",
        description:
          'Durable (JetStream); the acting boss applies it before its next dispatch and a new boss before its first. ' +
          "A field replaces the module's value, null lifts it, an absent field keeps it; {} removes the override.",
        params: FunctionParamsSchema,
        body: LimitsOverrideSchema,
        response: { 200: FunctionViewSchema, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => service.setLimits(request.params.name, request.body),
  )
}
