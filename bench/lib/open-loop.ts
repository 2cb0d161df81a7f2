/**
 * The open-loop schedule of the latency measurements (bench/e2e/latency.ts, bench/compare/latency.ts,
 * bench/compare/floor.ts): request i is sent at t0 + i / rate whatever the answers before it, and its
 * latency runs from its due time, so a stalled system shows up as latency rather than as a lower
 * offered rate. A request sent before its due time — a timer fires up to ≈ 1 ms early against
 * `performance.now()` (libuv's cached clock), and a wait under 1 ms is not slept — is timed from its
 * send: timing it from its due time counted the wait as negative latency (a Redis PING measured
 * 0.001 ms).
 */
import hdr, { type Histogram } from 'hdr-histogram-js'

export type Answer<T> = { ok: true; value: T } | { ok: false; error: unknown }

export interface OpenLoopOptions {
  ratePerSec: number
  /** Requests in all, the warm-up ones first. */
  total: number
  /** The first `warm` requests are sent but not recorded. */
  warm: number
  /** Called just before the first recorded request is sent (e.g. to start a CPU meter). */
  onRecordStart?: () => void
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** `seconds` of requests at `ratePerSec` after `warmupSeconds` of unrecorded warm-up. */
export function schedule(ratePerSec: number, seconds: number, warmupSeconds: number): OpenLoopOptions {
  const warm = Math.round(warmupSeconds * ratePerSec)
  return { ratePerSec, warm, total: warm + Math.round(seconds * ratePerSec) }
}

/** A histogram of latencies in µs, 1 µs to 120 s, 3 significant digits (destroy it when done). */
export function latencyHistogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 })
}

/**
 * Send `total` requests on the schedule; `answered` gets each one's latency (µs, ≥ 1) and outcome.
 * Resolves once every request is answered, with the largest lag of a recorded send behind its due time.
 */
export async function openLoop<T>(
  o: OpenLoopOptions,
  send: (index: number) => Promise<T>,
  answered: (us: number, answer: Answer<T>, recorded: boolean) => void,
): Promise<{ maxSendLagMs: number }> {
  const interval = 1000 / o.ratePerSec
  let maxSendLag = 0
  const pending: Promise<void>[] = []
  const t0 = performance.now() + 20
  for (let i = 0; i < o.total; i++) {
    const due = t0 + i * interval
    const wait = due - performance.now()
    if (wait > 1) await sleep(wait)
    const recorded = i >= o.warm
    if (i === o.warm) o.onRecordStart?.()
    const sent = performance.now()
    if (recorded) maxSendLag = Math.max(maxSendLag, sent - due)
    const from = Math.min(due, sent)
    const us = () => Math.max(1, Math.round((performance.now() - from) * 1000))
    pending.push(
      send(i).then(
        (value) => answered(us(), { ok: true, value }, recorded),
        (error: unknown) => answered(us(), { ok: false, error }, recorded),
      ),
    )
  }
  await Promise.all(pending)
  return { maxSendLagMs: Math.round(maxSendLag * 10) / 10 }
}
