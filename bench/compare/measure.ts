/**
 * What the compare benchmark measures, written once for both products: a `System` (bosun, or BullMQ
 * on Redis) offers the same submit calls, a count of finished jobs and its processes' pids; the
 * load generators and the clock here are shared, so each figure is taken the same way on both sides.
 * - Throughput: jobs / (last completion − first submit). The last completion is seen by polling the
 *   system's count of finished jobs every 50 ms from the end of the submits (bosun: the DONE stream's
 *   message count; BullMQ: `getJobCounts('completed', 'failed')`) — a count, not a decoded event per job.
 * - CPU: seconds per process over the same window (/proc, bench/lib/cpu.ts) divided by the jobs: µs/job.
 * - RSS of every process at the end of the window (retention growth shows up there).
 */
import { readFileSync } from 'node:fs'
import { CpuMeter } from '../lib/cpu.js'
import { JsonClient } from '../lib/http.js'
import type { RoundTripProbe } from './floor.js'

/** One product under test, started with its processes. */
export interface System {
  readonly side: 'bosun' | 'bullmq'
  /** The HTTP base URL of the product's front (bosun's API, BullMQ's Fastify front). */
  readonly httpUrl: string
  /**
   * Finished jobs so far (succeeded + failed), one cheap request — or, where the product cannot count
   * them cheaply, a figure that grows with them and never passes them (see `idle`).
   */
  finished(): Promise<number>
  /** When present: whether every job submitted so far is finished (asked only after the submits are acknowledged). */
  idle?(): Promise<boolean>
  /** When present: jobs failed so far (a no-op that fails means the side is broken, not fast). */
  failed?(): Promise<number>
  /** The processes whose CPU is measured, by label (the bench process itself is added as `bench`). */
  pids(): Record<string, number | undefined>
  /** Native client: `n` jobs in one call (bosun `submitBatch`, BullMQ `addBulk`). */
  nativeBatch(n: number): Promise<void>
  /** Native client: one job (bosun `submit`, BullMQ `add`), resolved once stored. */
  nativeOne(): Promise<void>
  /** A probe of one round trip through the side's broker (floor.ts). */
  roundTripProbe(): Promise<RoundTripProbe>
  close(): Promise<void>
}

export type Workload = 'native-batch' | 'native-one' | 'http-batch' | 'http-one'

export interface ThroughputResult {
  workload: Workload
  jobs: number
  /** First submit → last submit answered (ms). */
  submitMs: number
  /** First submit → last completion seen (ms). */
  totalMs: number
  jobsPerSec: number
  submitPerSec: number
  /** HTTP submits answered 429/503 and retried. */
  retries: number
  /** Jobs of this step that failed, where the side counts them (`System.failed`). */
  failed?: number
  /** CPU µs per job, per process label, and `total`. */
  cpuUsPerJob: Record<string, number>
  /** Resident memory (MB) per process at the end. */
  rssMb: Record<string, number>
}

export interface LoadShape {
  /** Jobs per batch (native and HTTP). @defaultValue 500 */
  batchSize?: number
  /** Batches in flight. @defaultValue 4 */
  batchInflight?: number
  /** One-by-one submits in flight, each awaited. @defaultValue 64 */
  oneInflight?: number
}

const POLL_MS = 50
const RETRY_STATUSES = new Set([429, 503])
const NOOP = { function: 'noop' } as const
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Resident set size of `pid` in MB (NaN when gone). */
export function rssMb(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const kb = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
    return kb === undefined ? Number.NaN : Math.round(Number(kb) / 1024)
  } catch {
    return Number.NaN
  }
}

/**
 * Poll `finished()` until it reaches `target`; resolves with performance.now() of the answer that did.
 * Rejects when the count has not moved for `stallMs`.
 */
export async function waitFinished(sys: System, target: number, stallMs = 60_000): Promise<number> {
  let last = -1
  let movedAt = performance.now()
  for (;;) {
    const n = await sys.finished()
    const now = performance.now()
    if (n >= target || (sys.idle && (await sys.idle()))) return now
    if (n !== last) {
      last = n
      movedAt = now
    } else if (now - movedAt > stallMs) {
      throw new Error(`${sys.side}: ${target - n} jobs still unfinished, no progress for ${stallMs / 1000} s`)
    }
    await sleep(POLL_MS)
  }
}

/** Run `lanes` loops that each take work items until `items` are handed out. */
async function lanes(items: number, lanesCount: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  const lane = async () => {
    while (next < items) await work(next++)
  }
  await Promise.all(Array.from({ length: Math.min(lanesCount, items) }, lane))
}

/** POST with retries on 429/503 (bosun's back-pressure answers); anything else but 202 throws. */
async function postRetrying(client: JsonClient, path: string, body: unknown, retried: () => void): Promise<void> {
  for (;;) {
    const res = await client.post(path, body, 60_000)
    if (res.status === 202) return
    if (!RETRY_STATUSES.has(res.status))
      throw new Error(`POST ${path} answered ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`)
    retried()
    await sleep(20)
  }
}

/** Submit `jobs` noop jobs the `workload` way and wait until all are finished. */
export async function throughput(
  sys: System,
  workload: Workload,
  jobs: number,
  shape: LoadShape = {},
): Promise<ThroughputResult> {
  const batchSize = shape.batchSize ?? 500
  const batchInflight = shape.batchInflight ?? 4
  const oneInflight = shape.oneInflight ?? 64
  const batches = Math.ceil(jobs / batchSize)
  const sizeOf = (b: number) => Math.min(batchSize, jobs - b * batchSize)
  const client = new JsonClient(sys.httpUrl, Math.max(batchInflight, oneInflight))
  let retries = 0
  const retried = () => retries++
  const submitAll: Record<Workload, () => Promise<void>> = {
    'native-batch': () => lanes(batches, batchInflight, (b) => sys.nativeBatch(sizeOf(b))),
    'native-one': () => lanes(jobs, oneInflight, () => sys.nativeOne()),
    'http-batch': () =>
      lanes(batches, batchInflight, (b) =>
        postRetrying(client, '/jobs/batch', { jobs: Array.from({ length: sizeOf(b) }, () => NOOP) }, retried),
      ),
    'http-one': () => lanes(jobs, oneInflight, () => postRetrying(client, '/jobs', NOOP, retried)),
  }
  try {
    const base = await sys.finished()
    const failedBase = await sys.failed?.()
    const cpu = new CpuMeter(() => sys.pids())
    cpu.begin()
    const t0 = performance.now()
    await submitAll[workload]()
    const tSubmitted = performance.now()
    const tLast = await waitFinished(sys, base + jobs)
    const used = cpu.end()
    const cpuUsPerJob: Record<string, number> = {}
    let total = 0
    for (const [k, v] of Object.entries(used)) {
      cpuUsPerJob[k] = Math.round((v.cpuS * 1e6) / jobs)
      total += v.cpuS
    }
    cpuUsPerJob.total = Math.round((total * 1e6) / jobs)
    const rss: Record<string, number> = {}
    for (const [k, pid] of Object.entries(sys.pids())) rss[k] = rssMb(pid)
    rss.bench = Math.round(process.memoryUsage.rss() / 2 ** 20)
    const totalMs = tLast - t0
    const submitMs = tSubmitted - t0
    const failedNow = await sys.failed?.()
    return {
      workload,
      jobs,
      submitMs: Math.round(submitMs),
      totalMs: Math.round(totalMs),
      jobsPerSec: (jobs / totalMs) * 1000,
      submitPerSec: (jobs / submitMs) * 1000,
      retries,
      ...(failedNow === undefined || failedBase === undefined ? {} : { failed: failedNow - failedBase }),
      cpuUsPerJob,
      rssMb: rss,
    }
  } finally {
    client.close()
  }
}
