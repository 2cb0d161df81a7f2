/**
 * fail — always throws `Error(payload.message)` (bundled example job function).
 * @param {{ message?: unknown } | null | undefined} payload
 */
export default async function fail(payload) {
  const message =
    payload && typeof payload === 'object' && typeof payload.message === 'string'
      ? payload.message
      : 'fail: failed on purpose'
  throw new Error(message)
}
