/**
 * Submit → result latency: `POST /jobs?wait=5000` of `noop`, open loop at a fixed rate. Each latency
 * is measured from the request's scheduled send time, or from its send when that came first
 * (bench/lib/open-loop.ts: a stalled API shows up as latency instead of silently lowering the
 * offered rate), into an HDR histogram in microseconds.
 */
import type { BenchCluster } from './cluster.js'
import type { Job } from '../../jobs/model.js'
import { JsonClient } from '../lib/http.js'
import { latencyHistogram, openLoop, schedule } from '../lib/open-loop.js'

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

/** Offer `ratePerSec` requests for `seconds` after `warmupSeconds` of unrecorded warm-up. */
export async function latency(
  c: BenchCluster,
  ratePerSec = 200,
  seconds = 10,
  warmupSeconds = 1,
): Promise<LatencyResult> {
  const client = new JsonClient(c.cluster.apiUrl, 512)
  const histogram = latencyHistogram()
  const o = schedule(ratePerSec, seconds, warmupSeconds)
  let failures = 0
  const seg = {
    toCreated: [] as number[],
    toStarted: [] as number[],
    running: [] as number[],
    toAnswer: [] as number[],
  }
  try {
    const { maxSendLagMs } = await openLoop(
      o,
      () => {
        const sentAt = Date.now()
        return client
          .post<Partial<Job>>('/jobs?wait=5000', { function: 'noop' }, 30_000)
          .then((res) => ({ res, sentAt }))
      },
      (us, answer, recorded) => {
        if (!recorded) return
        if (!answer.ok) return void failures++
        const { res, sentAt } = answer.value
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
    )
    const ms = (p: number) => histogram.getValueAtPercentile(p) / 1000
    return {
      ratePerSec,
      seconds,
      requests: o.total - o.warm,
      failures,
      p50Ms: ms(50),
      p95Ms: ms(95),
      p99Ms: ms(99),
      maxMs: histogram.maxValue / 1000,
      maxSendLagMs,
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
