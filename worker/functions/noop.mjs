/**
 * noop — does nothing and returns null; the cheapest possible job (benchmarks).
 * @returns {Promise<null>}
 */
export default async function noop() {
  return null
}
