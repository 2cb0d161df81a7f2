/**
 * Flow limits of a function (README "Limits"): how many of its jobs may run at once cluster-wide
 * (`concurrency`), how many may start per sliding window (`rateLimit`), and the same per
 * `concurrencyKey` (`keyConcurrency`, `keyRateLimit`). A function module declares them
 * (`export const config = { concurrency, … }`); an operator overrides them through the API
 * (`PUT /functions/:name/limits`, kept in JetStream: jobs/streams/limits-store.ts). One parser for
 * every source, so a module, an API body and a stored record are held to the same rules.
 */
import { isObject } from './parse.js'

export interface RateLimit {
  /** Starts allowed in any window of `perMs`. */
  max: number
  perMs: number
}

export interface FunctionLimits {
  concurrency?: number
  rateLimit?: RateLimit
  keyConcurrency?: number
  keyRateLimit?: RateLimit
}

/** An override: a field set replaces the declared value, `null` lifts it, absent keeps the declared one. */
export type LimitsOverride = { [K in keyof FunctionLimits]?: FunctionLimits[K] | null }

export const LIMIT_FIELDS = ['concurrency', 'rateLimit', 'keyConcurrency', 'keyRateLimit'] as const

export const MAX_CONCURRENCY_LIMIT = 100_000
/** A rate limit's `max` is bounded: the boss keeps (and stores) the last `max` start times per window. */
export const MAX_RATE_MAX = 10_000
export const MIN_RATE_WINDOW_MS = 10
export const MAX_RATE_WINDOW_MS = 24 * 3600 * 1000

/** Why `x` is not a valid concurrency limit (null: it is). */
function concurrencyProblem(x: unknown): string | null {
  if (typeof x !== 'number' || !Number.isInteger(x) || x < 1 || x > MAX_CONCURRENCY_LIMIT)
    return `must be an integer from 1 to ${MAX_CONCURRENCY_LIMIT}`
  return null
}

function rateProblem(x: unknown): string | null {
  if (!isObject(x)) return 'must be { max, perMs }'
  const extra = Object.keys(x).filter((k) => k !== 'max' && k !== 'perMs')
  if (extra.length > 0) return `has unknown field ${extra[0]}`
  if (typeof x.max !== 'number' || !Number.isInteger(x.max) || x.max < 1 || x.max > MAX_RATE_MAX)
    return `.max must be an integer from 1 to ${MAX_RATE_MAX}`
  if (
    typeof x.perMs !== 'number' ||
    !Number.isInteger(x.perMs) ||
    x.perMs < MIN_RATE_WINDOW_MS ||
    x.perMs > MAX_RATE_WINDOW_MS
  )
    return `.perMs must be an integer from ${MIN_RATE_WINDOW_MS} to ${MAX_RATE_WINDOW_MS}`
  return null
}

function fieldProblem(field: (typeof LIMIT_FIELDS)[number], x: unknown): string | null {
  return field === 'rateLimit' || field === 'keyRateLimit' ? rateProblem(x) : concurrencyProblem(x)
}

/** Thrown by the parsers: `field` names the offending field. */
export class LimitsProblem extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message)
  }
}

function parseFields(x: unknown, allowNull: boolean): LimitsOverride {
  if (!isObject(x)) throw new LimitsProblem('', 'limits must be an object')
  const out: LimitsOverride = {}
  for (const [k, v] of Object.entries(x)) {
    if (!(LIMIT_FIELDS as readonly string[]).includes(k)) {
      if (k === 'isolation') continue // the other field of a module's config
      throw new LimitsProblem(k, `unknown limit ${k} (known: ${LIMIT_FIELDS.join(', ')})`)
    }
    const field = k as (typeof LIMIT_FIELDS)[number]
    if (v === undefined) continue
    if (v === null) {
      if (!allowNull) throw new LimitsProblem(field, `${field} must not be null`)
      out[field] = null
      continue
    }
    const problem = fieldProblem(field, v)
    if (problem !== null) throw new LimitsProblem(field, `${field} ${problem}`)
    ;(out as Record<string, unknown>)[field] =
      field === 'rateLimit' || field === 'keyRateLimit'
        ? { max: (v as RateLimit).max, perMs: (v as RateLimit).perMs }
        : v
  }
  return out
}

/** A module's `config` (or a worker's advertisement of it); throws LimitsProblem. */
export function parseDeclaredLimits(x: unknown): FunctionLimits {
  return parseFields(x, false) as FunctionLimits
}

/** An override (API body or stored record); throws LimitsProblem. */
export function parseLimitsOverride(x: unknown): LimitsOverride {
  return parseFields(x, true)
}

/** The limits in force: the override's fields over the declared ones (`null` lifts a limit). */
export function effectiveLimits(
  declared: FunctionLimits | undefined,
  override: LimitsOverride | undefined,
): FunctionLimits {
  const out: FunctionLimits = { ...declared }
  if (!override) return out
  for (const f of LIMIT_FIELDS) {
    const v = override[f]
    if (v === undefined) continue
    if (v === null) delete out[f]
    else (out as Record<string, unknown>)[f] = v
  }
  return out
}

/** The stricter of two declarations (workers running different versions of a module may disagree). */
export function stricterLimits(a: FunctionLimits, b: FunctionLimits): FunctionLimits {
  const out: FunctionLimits = {}
  const minOf = (x?: number, y?: number) => (x === undefined ? y : y === undefined ? x : Math.min(x, y))
  const c = minOf(a.concurrency, b.concurrency)
  if (c !== undefined) out.concurrency = c
  const kc = minOf(a.keyConcurrency, b.keyConcurrency)
  if (kc !== undefined) out.keyConcurrency = kc
  const r = stricterRate(a.rateLimit, b.rateLimit)
  if (r) out.rateLimit = r
  const kr = stricterRate(a.keyRateLimit, b.keyRateLimit)
  if (kr) out.keyRateLimit = kr
  return out
}

/** Of two rate limits, the one allowing fewer starts per ms (a tie: the longer window). */
function stricterRate(a?: RateLimit, b?: RateLimit): RateLimit | undefined {
  if (!a || !b) return a ?? b
  const ra = a.max / a.perMs
  const rb = b.max / b.perMs
  if (ra !== rb) return ra < rb ? a : b
  return a.perMs >= b.perMs ? a : b
}

export function hasLimits(l: FunctionLimits | undefined): boolean {
  return l !== undefined && LIMIT_FIELDS.some((f) => l[f] !== undefined)
}

export function sameLimits(a: FunctionLimits | undefined, b: FunctionLimits | undefined): boolean {
  return JSON.stringify(normal(a)) === JSON.stringify(normal(b))
}

function normal(l: FunctionLimits | undefined): unknown[] {
  return LIMIT_FIELDS.map((f) => l?.[f] ?? null)
}
