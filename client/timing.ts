/**
 * Waiting in the typed client (client/http.ts): an abortable sleep, the backoff between retries, and
 * one signal for a request that the caller's signal and its timeout may each abort. Kept apart so the
 * client itself stays about the API.
 */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason as Error)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })

/** Backoff without a Retry-After: 200 ms, 400 ms, 800 ms … up to 5 s, with jitter. */
export const backoff = (attempt: number) => Math.min(5000, 200 * 2 ** attempt) * (0.5 + Math.random() / 2)

/**
 * A signal that aborts when either does (AbortSignal.any needs Node 20.3); `done()` removes its
 * listeners once the request is over, so a long-lived caller signal does not collect them.
 */
export function either(a: AbortSignal, b: AbortSignal | undefined): { signal: AbortSignal; done(): void } {
  if (!b) return { signal: a, done: () => undefined }
  const both = new AbortController()
  const abort = () => both.abort()
  for (const s of [a, b]) {
    if (s.aborted) abort()
    else s.addEventListener('abort', abort, { once: true })
  }
  return {
    signal: both.signal,
    done: () => {
      a.removeEventListener('abort', abort)
      b.removeEventListener('abort', abort)
    },
  }
}
