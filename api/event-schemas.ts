/**
 * typebox schemas of the cluster-event routes (GET /cluster/events, /cluster/events/stream,
 * /cluster/leadership): a separate file so api/schemas.ts stays about jobs and the cluster view.
 */
import { Type } from 'typebox'
import { CLUSTER_EVENT_TYPES } from '../runner/events/model.js'

export const DEFAULT_EVENT_LIMIT = 100
export const MAX_EVENT_LIMIT = 1000

const Holder = Type.Object({ id: Type.String(), host: Type.String(), pid: Type.Integer() })

export const ClusterEventSchema = Type.Object(
  {
    id: Type.String({ description: 'stream sequence: the SSE id, and what `Last-Event-ID` resumes after' }),
    type: Type.Enum(CLUSTER_EVENT_TYPES),
    at: Type.String({ format: 'date-time' }),
    source: Type.Object({ id: Type.String(), host: Type.String(), pid: Type.Integer(), role: Type.String() }),
    epoch: Type.Optional(Type.Integer()),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
)

export const EventPageSchema = Type.Object(
  { events: Type.Array(ClusterEventSchema), next: Type.Optional(Type.String()) },
  { additionalProperties: false },
)

export const EventQuerySchema = Type.Object(
  {
    since: Type.Optional(Type.String({ format: 'date-time', description: 'only events at or after this time' })),
    type: Type.Optional(Type.Enum(CLUSTER_EVENT_TYPES)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_EVENT_LIMIT, default: DEFAULT_EVENT_LIMIT })),
    cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 32, description: 'the `next` of the previous page' })),
  },
  { additionalProperties: false },
)

export const EventStreamQuerySchema = Type.Object(
  {
    lastEventId: Type.Optional(
      Type.String({ pattern: '^[0-9]{1,16}$', description: 'resume after this event id (as `Last-Event-ID`)' }),
    ),
  },
  { additionalProperties: false },
)

export const LeadershipSchema = Type.Object(
  {
    terms: Type.Array(
      Type.Object(
        {
          epoch: Type.Integer(),
          boss: Holder,
          start: Type.String({ format: 'date-time' }),
          end: Type.Optional(Type.String({ format: 'date-time' })),
          ended: Type.Optional(Type.String({ description: 'why it ended: the boss’s reason, or `crashed`' })),
          dispatchingAt: Type.Optional(Type.String({ format: 'date-time' })),
          after: Type.Optional(Type.String({ description: '`first`, or how the previous term ended' })),
          gapBeforeMs: Type.Optional(
            Type.Number({ description: "the previous boss's last dispatch → this one dispatching" }),
          ),
          leaderlessMs: Type.Optional(Type.Number()),
          takeover: Type.Optional(
            Type.Object({
              takeoverMs: Type.Optional(Type.Number()),
              adopted: Type.Optional(Type.Number()),
              requeued: Type.Optional(Type.Number()),
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
)
