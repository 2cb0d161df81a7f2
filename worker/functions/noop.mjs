/** Trivial and non-blocking: runs on the worker's main thread (no thread hand-off). */
export const config = { isolation: 'inline' }

/**
 * noop — does nothing and returns null; the cheapest possible job (benchmarks).
 * @returns {Promise<null>}
 */
export default async function noop() {
  return null
}
