/** typebox schemas of the schedule routes (README "Schedules"): what a client sends, what it gets. */
import { Type, type Static } from 'typebox'
import {
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_PRIORITY,
  DEFAULT_TIMEOUT_MS,
  MAX_MAX_ATTEMPTS,
  MAX_PRIORITY,
  MAX_TIMEOUT_MS,
  MIN_PRIORITY,
} from '../jobs/model.js'
import { SCHEDULE_ID_PATTERN } from '../jobs/schedules/model.js'
import { FunctionNameSchema } from './schemas.js'

/** The longest catch-up window: a week of owed due times at most. */
export const MAX_CATCH_UP_WINDOW_MS = 7 * 24 * 3600 * 1000

const isoTime = (description: string) => Type.String({ format: 'date-time', description })

export const ScheduleIdParamsSchema = Type.Object({ id: Type.String() }, { additionalProperties: false })

const JobOptionsSchema = Type.Object(
  {
    priority: Type.Optional(Type.Integer({ minimum: MIN_PRIORITY, maximum: MAX_PRIORITY, default: DEFAULT_PRIORITY })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TIMEOUT_MS, default: DEFAULT_TIMEOUT_MS })),
    maxAttempts: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_MAX_ATTEMPTS, default: DEFAULT_MAX_ATTEMPTS })),
  },
  { additionalProperties: false },
)

const specFields = {
  cron: Type.String({
    minLength: 1,
    maxLength: 200,
    description: 'cron expression: 5 fields, or 6 with seconds first (croner syntax)',
  }),
  timezone: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'IANA time zone (default UTC)' })),
  function: FunctionNameSchema,
  payload: Type.Optional(Type.Unknown({ description: 'the payload of every job it fires' })),
  jobOptions: Type.Optional(JobOptionsSchema),
  overlap: Type.Optional(
    Type.Enum(['allow', 'skip', 'queue-one'], {
      description: 'while its previous job is unfinished: fire anyway, skip the due time, or hold one back',
    }),
  ),
  catchUp: Type.Optional(
    Type.Enum(['none', 'latest', 'all'], {
      description: 'due times missed while no boss was acting: skip them, fire the newest, or fire each',
    }),
  ),
  catchUpWindowMs: Type.Optional(
    Type.Integer({ minimum: 0, maximum: MAX_CATCH_UP_WINDOW_MS, description: 'how far back due times are owed' }),
  ),
  paused: Type.Optional(Type.Boolean()),
}

/** POST /schedules. */
export const ScheduleCreateSchema = Type.Object(
  {
    id: Type.String({ pattern: SCHEDULE_ID_PATTERN.source, description: 'letters, digits, _ and -, 1–64' }),
    ...specFields,
  },
  { additionalProperties: false, title: 'ScheduleCreate' },
)
export type ScheduleCreate = Static<typeof ScheduleCreateSchema>

/** PUT /schedules/:id: the whole definition again (the id is the path's). */
export const ScheduleUpdateSchema = Type.Object(specFields, { additionalProperties: false, title: 'ScheduleUpdate' })
export type ScheduleUpdate = Static<typeof ScheduleUpdateSchema>

export const ScheduleViewSchema = Type.Object(
  {
    id: Type.String(),
    cron: Type.String(),
    timezone: Type.String(),
    function: Type.String(),
    payload: Type.Optional(Type.Unknown()),
    jobOptions: JobOptionsSchema,
    overlap: Type.String(),
    catchUp: Type.String(),
    catchUpWindowMs: Type.Integer(),
    paused: Type.Boolean(),
    createdAt: isoTime('when it was created'),
    updatedAt: isoTime('when it last changed'),
    next: Type.Array(isoTime('a coming due time'), { description: 'the next 5 due times (none while paused)' }),
    lastDue: Type.Optional(isoTime('the newest due time fired or passed over')),
    deferred: Type.Optional(isoTime('a due time held back until the previous job ends (queue-one)')),
    recent: Type.Array(Type.Object({ due: Type.String(), jobId: Type.String() }), {
      description: 'the latest due times fired and their jobs, newest first',
    }),
  },
  { additionalProperties: false, title: 'Schedule' },
)
export type ScheduleView = Static<typeof ScheduleViewSchema>

export const ScheduleListSchema = Type.Object(
  { schedules: Type.Array(ScheduleViewSchema) },
  { additionalProperties: false, title: 'ScheduleList' },
)
