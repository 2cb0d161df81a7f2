/**
 * Request and response schemas of the function routes (README "Limits"): typebox, so the routes
 * are validated and documented (OpenAPI at /docs) from one definition. Deeper rules (bounds, known
 * fields) are jobs/limits.ts's, the same for a module's config, an API body and a stored record.
 */
import { Type } from 'typebox'
import {
  MAX_CONCURRENCY_LIMIT,
  MAX_RATE_MAX,
  MAX_RATE_WINDOW_MS,
  MIN_RATE_WINDOW_MS,
  type FunctionLimits,
  type LimitsOverride,
} from '../jobs/limits.js'

const concurrency = (description: string) => Type.Integer({ minimum: 1, maximum: MAX_CONCURRENCY_LIMIT, description })

const RateLimitSchema = Type.Object(
  {
    max: Type.Integer({ minimum: 1, maximum: MAX_RATE_MAX, description: 'starts allowed in any window' }),
    perMs: Type.Integer({ minimum: MIN_RATE_WINDOW_MS, maximum: MAX_RATE_WINDOW_MS, description: 'the window (ms)' }),
  },
  { additionalProperties: false, title: 'RateLimit' },
)

const fields = {
  concurrency: concurrency('at most this many of its jobs run at once, cluster-wide'),
  rateLimit: RateLimitSchema,
  keyConcurrency: concurrency('at most this many jobs of one concurrencyKey run at once'),
  keyRateLimit: RateLimitSchema,
}

export const LimitsSchema = Type.Object(
  {
    concurrency: Type.Optional(fields.concurrency),
    rateLimit: Type.Optional(fields.rateLimit),
    keyConcurrency: Type.Optional(fields.keyConcurrency),
    keyRateLimit: Type.Optional(fields.keyRateLimit),
  },
  { additionalProperties: false, title: 'Limits' },
)

const orNull = <T extends Parameters<typeof Type.Union>[0][number]>(s: T) =>
  Type.Optional(Type.Union([s, Type.Null()], { description: 'null: no limit, whatever the module declares' }))

export const LimitsOverrideSchema = Type.Object(
  {
    concurrency: orNull(fields.concurrency),
    rateLimit: orNull(fields.rateLimit),
    keyConcurrency: orNull(fields.keyConcurrency),
    keyRateLimit: orNull(fields.keyRateLimit),
  },
  {
    additionalProperties: false,
    title: 'LimitsOverride',
    description:
      "a field set replaces the module's declared value, null lifts it, an absent field keeps the declared one; " +
      '{} removes the override',
  },
)

export const FunctionViewSchema = Type.Object(
  {
    name: Type.String(),
    workers: Type.Integer({ description: 'live workers that advertise it' }),
    capacity: Type.Integer({ description: 'their job slots together' }),
    running: Type.Union([Type.Integer(), Type.Null()], {
      description: 'its running jobs as the acting boss counts them (null: no fresh boss report)',
    }),
    declared: LimitsSchema,
    override: Type.Union([LimitsOverrideSchema, Type.Null()]),
    overrideUpdatedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    limits: LimitsSchema,
  },
  { additionalProperties: false, title: 'Function' },
)

export const FunctionListSchema = Type.Object({ functions: Type.Array(FunctionViewSchema) }, { title: 'Functions' })

export const FunctionParamsSchema = Type.Object({ name: Type.String({ description: 'the function name' }) })

export interface FunctionView {
  name: string
  workers: number
  capacity: number
  running: number | null
  declared: FunctionLimits
  override: LimitsOverride | null
  overrideUpdatedAt: string | null
  limits: FunctionLimits
}
