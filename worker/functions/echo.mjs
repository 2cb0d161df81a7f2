/** Trivial and non-blocking: runs on the worker's main thread (no thread hand-off). */
export const config = { isolation: 'inline' }

/**
 * echo — returns its payload unchanged (bundled example job function).
 * @param {unknown} payload
 * @returns {Promise<unknown>}
 */
export default async function echo(payload) {
  return payload === undefined ? null : payload
}
