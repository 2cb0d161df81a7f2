/**
 * Submit → result latency: `POST /jobs?wait=5000` of `noop`, open loop at a fixed rate. Each latency
 * is measured from the request's scheduled send time (so a stalled API shows up as latency instead
 * of silently lowering the offered rate), into an HDR histogram in microseconds.
 */
import hdr from 'hdr-histogram-js'
import type { BenchCluster } from './cluster.js'
import type { Job } from '../../jobs/model.js'
import { JsonClient } from '../lib/http.js'

export interface LatencyResult {
  ratePerSec: number
  seconds: number
  requests: number
  /** Answers that were not `200` with a succeeded job (202 after the wait, 5xx, network errors). */
  failures: number
  p50Ms: number
  p95Ms: number
  p99Ms: number
  maxMs: number
  /** Largest lag of a send behind its schedule (the benchmark process itself falling behind). */
  maxSendLagMs: number
  /**
   * Where the time goes (medians, ms, from the job's own timestamps — Date.now() of different processes
   * on one machine, 1 ms resolution): send → createdAt (HTTP + API), createdAt → startedAt (store write,
   * boss watch, dispatch), startedAt → finishedAt (run on a function thread), finishedAt → answer
   * (result to the boss, final write, finished event, API reply).
   */
  segmentsMs: { toCreated: number; toStarted: number; running: number; toAnswer: number }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? Number.NaN : s[Math.floor(s.length / 2)]!
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Offer `ratePerSec` requests for `seconds` after `warmupSeconds` of unrecorded warm-up. */
export async function latency(
  c: BenchCluster,
  ratePerSec = 200,
  seconds = 10,
  warmupSeconds = 1,
): Promise<LatencyResult> {
  const client = new JsonClient(c.cluster.apiUrl, 512)
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 120_000_000,
    numberOfSignificantValueDigits: 3,
  })
  const interval = 1000 / ratePerSec
  const warm = Math.round(warmupSeconds * ratePerSec)
  const total = warm + Math.round(seconds * ratePerSec)
  let failures = 0
  const seg = {
    toCreated: [] as number[],
    toStarted: [] as number[],
    running: [] as number[],
    toAnswer: [] as number[],
  }
  let maxSendLag = 0
  const pending: Promise<void>[] = []
  try {
    const t0 = performance.now() + 20
    for (let i = 0; i < total; i++) {
      const due = t0 + i * interval
      const wait = due - performance.now()
      if (wait > 1) await sleep(wait)
      const lag = performance.now() - due
      if (i >= warm && lag > maxSendLag) maxSendLag = lag
      const recorded = i >= warm
      const sentAt = Date.now()
      pending.push(
        client.post<Partial<Job>>('/jobs?wait=5000', { function: 'noop' }, 30_000).then(
          (res) => {
            const us = Math.max(1, Math.round((performance.now() - due) * 1000))
            if (!recorded) return
            const answeredAt = Date.now()
            if (res.status !== 200 || res.body?.state !== 'succeeded') failures++
            histogram.recordValue(us)
            const created = Date.parse(res.body?.createdAt ?? '')
            const started = Date.parse(res.body?.startedAt ?? '')
            const finished = Date.parse(res.body?.finishedAt ?? '')
            if (Number.isFinite(created) && Number.isFinite(started) && Number.isFinite(finished)) {
              seg.toCreated.push(created - sentAt)
              seg.toStarted.push(started - created)
              seg.running.push(finished - started)
              seg.toAnswer.push(answeredAt - finished)
            }
          },
          () => {
            if (recorded) failures++
          },
        ),
      )
    }
    await Promise.all(pending)
    const ms = (p: number) => histogram.getValueAtPercentile(p) / 1000
    return {
      ratePerSec,
      seconds,
      requests: total - warm,
      failures,
      p50Ms: ms(50),
      p95Ms: ms(95),
      p99Ms: ms(99),
      maxMs: histogram.maxValue / 1000,
      maxSendLagMs: Math.round(maxSendLag * 10) / 10,
      segmentsMs: {
        toCreated: median(seg.toCreated),
        toStarted: median(seg.toStarted),
        running: median(seg.running),
        toAnswer: median(seg.toAnswer),
      },
    }
  } finally {
    histogram.destroy()
    client.close()
  }
}
