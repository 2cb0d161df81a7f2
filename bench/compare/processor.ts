/**
 * BullMQ's side of bosun's bundled `noop` function (worker/functions/noop.mjs): does nothing, returns null.
 * Imported by the inline BullMQ workers and loaded by path (dist/bench/compare/processor.js) by the
 * sandboxed ones (`useWorkerThreads: true`), so both execution models run the same function.
 */
export default async function noop(): Promise<null> {
  return null
}
