/** Wait on a condition, never on a sleep: polls `check` until it returns a truthy value. */
export interface WaitOptions {
  timeoutMs?: number
  intervalMs?: number
  what?: string
}

export async function waitFor<T>(check: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 15_000
  const intervalMs = opts.intervalMs ?? 20
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (err) {
      lastError = err
      if (err instanceof Error && /exited with/.test(err.message)) throw err
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `: last error ${lastError.message}` : ''
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.what ?? 'condition'}${why}`)
    }
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/**
 * Resolve when `emitter` emits `event` (optionally matching `filter`), or reject after timeoutMs.
 * @public part of the test kit (no test uses it at the moment)
 */
export function once<T = unknown>(
  emitter: { on(e: string, f: (...a: any[]) => void): unknown; off(e: string, f: (...a: any[]) => void): unknown },
  event: string,
  opts: { timeoutMs?: number; filter?: (v: T) => boolean } = {},
): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, handler)
      reject(new Error(`timed out waiting for event ${event}`))
    }, opts.timeoutMs ?? 15_000)
    const handler = (v: T) => {
      if (opts.filter && !opts.filter(v)) return
      clearTimeout(timer)
      emitter.off(event, handler)
      resolve(v)
    }
    emitter.on(event, handler)
  })
}
