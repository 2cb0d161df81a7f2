/**
 * How bosun's own store and NATS operations back off when they fail: 50 ms doubling up to a cap
 * (2 s by default), so every writer and reader retries alike and none spins. Job retries use
 * worker/boss/backoff.ts instead (user-facing, with jitter).
 */

/** First delay after a failure. */
export const RETRY_MIN_MS = 50
/** Default cap of the doubling delay. */
export const RETRY_MAX_MS = 2000

/** Delay before retry number `failures` (0-based): 50, 100, 200, … ms, at most `maxMs`. */
export function retryDelay(failures: number, maxMs = RETRY_MAX_MS): number {
  return Math.min(RETRY_MIN_MS * 2 ** Math.max(0, failures), maxMs)
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Whether `p` settles within `ms` (true) or not (false); the timer is cleared either way. */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))
  return Promise.race([p.then(() => true), timeout]).finally(() => clearTimeout(timer))
}
