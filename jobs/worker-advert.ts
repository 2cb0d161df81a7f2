/**
 * What a worker advertises in the registry (and its node entry): the functions it runs, how many
 * jobs it takes at once, and the limits its function modules declare. The boss reads every
 * worker's advertisement through `parseWorkerMeta` before it believes any of it.
 */
import { FUNCTION_NAME_PATTERN } from './model.js'
import { isObject } from './parse.js'
import { parseDeclaredLimits, type FunctionLimits } from './limits.js'

/** Largest capacity a worker may advertise (WORKER_CONCURRENCY's bound): a bogus registration cannot soak up jobs. */
export const MAX_WORKER_CAPACITY = 1024
/** Largest prefetch a worker may advertise, in multiples of its capacity (WORKER_PREFETCH's bound). */
export const MAX_PREFETCH_PER_SLOT = 4

/** What a worker advertises in the registry and in its node entry. */
export interface WorkerMeta {
  role: 'worker' | 'boss'
  functions: string[]
  capacity: number
  /** Jobs it holds beyond `capacity`, waiting for a slot (WORKER_PREFETCH); absent: none. */
  prefetch?: number
  /** The limits its function modules declare (README "Limits"), by function; absent: none. */
  limits?: Record<string, FunctionLimits>
}

export interface WorkerAdvert {
  functions: string[]
  capacity: number
  /** 0 when absent or not a whole number; at most MAX_PREFETCH_PER_SLOT × `capacity`. */
  prefetch: number
  /** Valid declarations only: a function whose advertised limits do not parse is left out (`badLimits`). */
  limits: Record<string, FunctionLimits>
  badLimits: string[]
}

/** A worker's registry metadata, or undefined when it is not a usable advertisement. */
export function parseWorkerMeta(meta: unknown): WorkerAdvert | undefined {
  if (!isObject(meta)) return undefined
  const { functions, capacity } = meta
  if (!Array.isArray(functions) || !functions.every((f) => typeof f === 'string' && FUNCTION_NAME_PATTERN.test(f)))
    return undefined
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 1) return undefined
  const limits: Record<string, FunctionLimits> = {}
  const badLimits: string[] = []
  if (isObject(meta.limits)) {
    for (const [fn, raw] of Object.entries(meta.limits)) {
      if (!(functions as string[]).includes(fn)) continue
      try {
        limits[fn] = parseDeclaredLimits(raw)
      } catch {
        badLimits.push(fn)
      }
    }
  }
  const slots = Math.min(capacity, MAX_WORKER_CAPACITY)
  const ahead = meta.prefetch
  const valid = typeof ahead === 'number' && Number.isInteger(ahead) && ahead > 0
  const prefetch = valid ? Math.min(ahead, MAX_PREFETCH_PER_SLOT * slots) : 0
  return { functions: functions as string[], capacity: slots, prefetch, limits, badLimits }
}
