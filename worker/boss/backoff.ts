/** Retry delay after a failed attempt: exponential with equal jitter (half fixed, half random), capped. */
export const DEFAULT_BACKOFF_BASE_MS = 200
export const DEFAULT_BACKOFF_MAX_MS = 60_000

export function retryDelayMs(
  failedAttempts: number,
  opts: { baseMs?: number; maxMs?: number; random?: () => number } = {},
): number {
  const base = opts.baseMs ?? DEFAULT_BACKOFF_BASE_MS
  const max = opts.maxMs ?? DEFAULT_BACKOFF_MAX_MS
  const ceiling = Math.min(max, base * 2 ** Math.max(0, failedAttempts - 1))
  // "equal jitter": at least half the ceiling, so retries never bunch at 0 ms.
  const r = (opts.random ?? Math.random)()
  return Math.round(ceiling / 2 + r * (ceiling / 2))
}
