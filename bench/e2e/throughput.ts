/**
 * Throughput of `noop` jobs through the whole system: HTTP submit → JetStream store → boss → worker →
 * boss → finished event. Jobs/s from the first submit to the last completion (counted from the
 * finished events), plus the submit-only rate, ZooKeeper packets, NATS messages and CPU per process.
 */
import { natsVarz, zkPackets, type BenchCluster } from './cluster.js'

export interface ThroughputResult {
  mode: 'single' | 'batch'
  jobs: number
  /** First submit → last 202 (ms). */
  submitMs: number
  /** First submit → last completion (ms). */
  totalMs: number
  jobsPerSec: number
  submitPerSec: number
  /** Submits answered with something other than 202 (retried on 503/429). */
  retries: number
  zkPacketsReceived: number
  natsMsgsPerJob: { in: number; out: number }
  cpu: Record<string, { cpuS: number; cores: number }>
}

const RETRY_STATUSES = new Set([429, 503])
const NOOP = { function: 'noop' } as const

/** Run `submitAll` (which reports the ids it got back), then wait for every completion. */
async function measure(
  c: BenchCluster,
  mode: ThroughputResult['mode'],
  jobs: number,
  submitAll: (record: (ids: string[]) => void, retried: () => void) => Promise<void>,
): Promise<ThroughputResult> {
  const ids: string[] = []
  let retries = 0
  const cpu = await c.cpuMeter()
  const zk0 = await zkPackets(c.zk)
  const nats0 = await natsVarz(c.nats)
  cpu.begin()
  const t0 = performance.now()
  await submitAll(
    (got) => ids.push(...got),
    () => retries++,
  )
  const tSubmitted = performance.now()
  if (ids.length !== jobs) throw new Error(`submitted ${ids.length} of ${jobs} jobs`)
  const last = await c.events.waitAll(ids, Math.max(180_000, jobs * 10))
  const cpuUse = cpu.end()
  const zk1 = await zkPackets(c.zk)
  const nats1 = await natsVarz(c.nats)
  const totalMs = last - t0
  const submitMs = tSubmitted - t0
  return {
    mode,
    jobs,
    submitMs: Math.round(submitMs),
    totalMs: Math.round(totalMs),
    jobsPerSec: (jobs / totalMs) * 1000,
    submitPerSec: (jobs / submitMs) * 1000,
    retries,
    zkPacketsReceived: zk1.received - zk0.received,
    natsMsgsPerJob: { in: (nats1.inMsgs - nats0.inMsgs) / jobs, out: (nats1.outMsgs - nats0.outMsgs) / jobs },
    cpu: cpuUse,
  }
}

/** POST /jobs one job at a time, `inflight` requests outstanding. */
export function throughputSingle(c: BenchCluster, jobs: number, inflight = 64): Promise<ThroughputResult> {
  return measure(c, 'single', jobs, async (record, retried) => {
    let next = 0
    const lane = async () => {
      while (next < jobs) {
        next++
        for (;;) {
          const res = await c.client.post<{ id: string }>('/jobs', NOOP)
          if (res.status === 202) {
            record([res.body!.id])
            break
          }
          if (!RETRY_STATUSES.has(res.status))
            throw new Error(`POST /jobs answered ${res.status}: ${JSON.stringify(res.body)}`)
          retried()
          await new Promise((r) => setTimeout(r, 20))
        }
      }
    }
    await Promise.all(Array.from({ length: inflight }, lane))
  })
}

/** POST /jobs/batch with `batchSize` jobs each, `inflight` batches outstanding. */
export function throughputBatch(
  c: BenchCluster,
  jobs: number,
  batchSize = 500,
  inflight = 4,
): Promise<ThroughputResult> {
  const batches = Math.ceil(jobs / batchSize)
  return measure(c, 'batch', jobs, async (record, retried) => {
    let next = 0
    const lane = async () => {
      while (next < batches) {
        const n = Math.min(batchSize, jobs - next * batchSize)
        next++
        const body = { jobs: Array.from({ length: n }, () => NOOP) }
        for (;;) {
          const res = await c.client.post<{ jobs: { id: string }[] }>('/jobs/batch', body, 60_000)
          if (res.status === 202) {
            record(res.body!.jobs.map((j) => j.id))
            break
          }
          if (!RETRY_STATUSES.has(res.status))
            throw new Error(`POST /jobs/batch answered ${res.status}: ${JSON.stringify(res.body)}`)
          retried()
          await new Promise((r) => setTimeout(r, 20))
        }
      }
    }
    await Promise.all(Array.from({ length: inflight }, lane))
  })
}

/** ZooKeeper packets received over an idle interval of `ms` (pings and liveness probes only). */
export async function idleZkPackets(c: BenchCluster, ms: number): Promise<{ ms: number; received: number }> {
  const a = await zkPackets(c.zk)
  const t0 = performance.now()
  await new Promise((r) => setTimeout(r, ms))
  const b = await zkPackets(c.zk)
  return { ms: performance.now() - t0, received: b.received - a.received }
}
