/**
 * sleep — `{ ms }`: resolves with `{ slept: ms }` after ms milliseconds (bundled example job function).
 * Honours `ctx.signal`: when the job is cancelled or times out it rejects at once with the abort error.
 */
import { setTimeout as delay } from 'node:timers/promises'

/** The longest timer Node keeps (a longer one would fire after 1 ms). */
const MAX_MS = 2 ** 31 - 1

/**
 * @param {{ ms?: unknown } | null | undefined} payload
 * @param {{ signal: AbortSignal }} ctx
 */
export default async function sleep(payload, ctx) {
  const ms = payload && typeof payload === 'object' ? (payload.ms ?? 0) : 0
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_MS) {
    throw new TypeError(`sleep: payload.ms must be a number from 0 to ${MAX_MS}`)
  }
  await delay(ms, undefined, { signal: ctx.signal })
  return { slept: ms }
}
