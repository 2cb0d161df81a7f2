/**
 * echo — returns its payload unchanged (bundled example job function).
 * @param {unknown} payload
 * @returns {Promise<unknown>}
 */
export default async function echo(payload) {
  return payload === undefined ? null : payload
}
