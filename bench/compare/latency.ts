/**
 * Submit → result latency over HTTP for both products with the same load generator: `POST
 * /jobs?wait=5000` of `noop` at an open-loop rate (bosun's API holds the request until the job's
 * finished event; BullMQ's front does `queue.add` + `job.waitUntilFinished(queueEvents)`). Each
 * latency is measured from the request's scheduled send time (or its send, when earlier:
 * bench/lib/open-loop.ts), so a stalled server shows up as latency rather than as a lower offered
 * rate; HDR histogram in microseconds. CPU µs per job over the window is recorded as for the
 * throughput rows.
 */
import { CpuMeter } from '../lib/cpu.js'
import { JsonClient } from '../lib/http.js'
import { latencyHistogram, openLoop, schedule } from '../lib/open-loop.js'
import type { System } from './measure.js'
import type { LatencyResult as E2eLatencyResult } from '../e2e/latency.js'

/** The e2e bench's open-loop figures (without its per-segment split), plus CPU per request. */
export interface LatencyResult extends Omit<E2eLatencyResult, 'segmentsMs'> {
  /** CPU µs per request, per process label and `total`, over the recorded window. */
  cpuUsPerJob: Record<string, number>
}

/** Offer `ratePerSec` requests for `seconds` after `warmupSeconds` of unrecorded warm-up. */
export async function latency(sys: System, ratePerSec = 200, seconds = 10, warmupSeconds = 1): Promise<LatencyResult> {
  const client = new JsonClient(sys.httpUrl, 512)
  const histogram = latencyHistogram()
  const o = schedule(ratePerSec, seconds, warmupSeconds)
  const cpu = new CpuMeter(() => sys.pids())
  let failures = 0
  try {
    const post = () => client.post<{ state?: string }>('/jobs?wait=5000', { function: 'noop' }, 30_000)
    const { maxSendLagMs } = await openLoop(
      { ...o, onRecordStart: () => cpu.begin() },
      post,
      (us, answer, recorded) => {
        if (!recorded) return
        if (!answer.ok) return void failures++
        histogram.recordValue(us)
        if (answer.value.status !== 200 || answer.value.body?.state !== 'succeeded') failures++
      },
    )
    const used = cpu.end()
    const requests = o.total - o.warm
    const cpuUsPerJob: Record<string, number> = {}
    let sum = 0
    for (const [k, v] of Object.entries(used)) {
      cpuUsPerJob[k] = Math.round((v.cpuS * 1e6) / requests)
      sum += v.cpuS
    }
    cpuUsPerJob.total = Math.round((sum * 1e6) / requests)
    const ms = (p: number) => histogram.getValueAtPercentile(p) / 1000
    return {
      ratePerSec,
      seconds,
      requests,
      failures,
      p50Ms: ms(50),
      p95Ms: ms(95),
      p99Ms: ms(99),
      maxMs: histogram.maxValue / 1000,
      maxSendLagMs,
      cpuUsPerJob,
    }
  } finally {
    histogram.destroy()
    client.close()
  }
}
