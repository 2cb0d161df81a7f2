/**
 * The schedule routes (README "Schedules"): create, list, read (with the next due times and the
 * jobs fired per due time), replace, delete, pause and resume. The boss fires them
 * (worker/boss/scheduler.ts); these routes only change the definitions in the schedule store.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import {
  ScheduleCreateSchema,
  ScheduleIdParamsSchema,
  ScheduleListSchema,
  ScheduleUpdateSchema,
  ScheduleViewSchema,
} from '../schedule-schemas.js'
import type { ScheduleService } from '../schedule-service.js'
import { errorResponses, security } from './responses.js'

export interface ScheduleRoutesOptions {
  schedules: ScheduleService
  authOn: boolean
}

export const scheduleRoutes: FastifyPluginAsyncTypebox<ScheduleRoutesOptions> = async (app, opts) => {
  const service = opts.schedules
  const common = { tags: ['schedules'], ...security(opts.authOn) }
  const one = { 200: ScheduleViewSchema, ...errorResponses(400, 401, 404, 503) }

  app.post(
    '/schedules',
    {
      schema: {
        ...common,
        summary: 'Create a schedule',
        description:
          'The acting boss fires its function at each due time, once per due time across boss changes ' +
          '(idempotency key `schedule:<id>:<due time>`). 400 names a bad `cron` or `timezone`; 409 when the id exists.',
        body: ScheduleCreateSchema,
        response: { 201: ScheduleViewSchema, ...errorResponses(400, 401, 409, 503) },
      },
    },
    async (request, reply) => {
      reply.code(201)
      return service.create(request.body)
    },
  )

  app.get(
    '/schedules',
    { schema: { ...common, summary: 'Every schedule', response: { 200: ScheduleListSchema, ...errorResponses(401) } } },
    async () => ({ schedules: await service.list() }),
  )

  app.get(
    '/schedules/:id',
    { schema: { ...common, summary: 'One schedule', params: ScheduleIdParamsSchema, response: one } },
    async (request) => service.get(request.params.id),
  )

  app.put(
    '/schedules/:id',
    {
      schema: {
        ...common,
        summary: 'Replace a schedule',
        description: 'A new cron or time zone owes due times from now on; 409 when it changed meanwhile.',
        params: ScheduleIdParamsSchema,
        body: ScheduleUpdateSchema,
        response: { ...one, ...errorResponses(409) },
      },
    },
    async (request) => service.update(request.params.id, request.body),
  )

  app.delete(
    '/schedules/:id',
    {
      schema: {
        ...common,
        summary: 'Delete a schedule (the jobs it fired stay)',
        params: ScheduleIdParamsSchema,
        response: { 204: { type: 'null', description: 'deleted' }, ...errorResponses(401, 404, 503) },
      },
    },
    async (request, reply) => {
      await service.remove(request.params.id)
      return reply.code(204).send(null)
    },
  )

  for (const [action, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    app.post(
      `/schedules/:id/${action}`,
      {
        schema: {
          ...common,
          summary: paused ? 'Pause a schedule' : 'Resume a schedule (due times while paused are not owed)',
          params: ScheduleIdParamsSchema,
          response: { ...one, ...errorResponses(409) },
        },
      },
      async (request) => service.setPaused(request.params.id, paused),
    )
  }
}
