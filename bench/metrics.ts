/**
 * What observing the cluster costs the hot path: the e2e throughput runs (bench/e2e/throughput.ts,
 * `noop` jobs one by one and in batches) on clusters with metrics off (API_METRICS=false, no
 * worker METRICS_PORT) and on (the API's /metrics, every worker's METRICS_PORT, and every endpoint
 * scraped once a second — Prometheus's default is every 15 s), alternating which goes first in each
 * run so the machine's drift hits both. Cluster events are on in both (they are never per job).
 * Prints both sides and the on/off ratio of the medians; the JSON has every run.
 */
import { startNats, startZooKeeper, freePort } from '../test/helpers/servers.js'
import { openCluster, type BenchCluster, type ClusterSettings, type Nats } from './e2e/cluster.js'
import { throughputBatch, throughputSingle, type ThroughputResult } from './e2e/throughput.js'
import { machineInfo, progress, summarize, type Row } from './lib/report.js'
import { alternateSides, medianRatio, sideValues } from './lib/sides.js'
import type { BenchOutcome } from './runtime.js'

export interface MetricsBenchOptions {
  /** @defaultValue 5 */
  runs?: number
  /** Jobs per throughput measurement. @defaultValue 20000 */
  jobs?: number
  /** @defaultValue 5 */
  workers?: number
  /** @defaultValue 16 */
  concurrency?: number
}

type Side = 'off' | 'on'

interface SideRecord {
  run: number
  side: Side
  machine: Record<string, unknown>
  single?: ThroughputResult
  batch?: ThroughputResult
  scrapes: number
  scrapeFailures: number
  errors: string[]
}

/** Scrape every metrics endpoint once a second until stopped. */
function scraper(urls: string[]): { stop(): Promise<{ scrapes: number; failures: number }> } {
  let scrapes = 0
  let failures = 0
  let running = true
  const loop = (async () => {
    while (running) {
      await Promise.all(
        urls.map(async (u) => {
          const res = await fetch(u).catch(() => undefined)
          if (res?.status === 200) {
            await res.text()
            scrapes++
          } else failures++
        }),
      )
      await new Promise((r) => setTimeout(r, 1000))
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return { scrapes, failures }
    },
  }
}

async function measureSide(
  zk: Awaited<ReturnType<typeof startZooKeeper>>,
  nats: Nats,
  base: ClusterSettings,
  jobs: number,
  rec: SideRecord,
): Promise<void> {
  const ports: number[] = []
  const settings: ClusterSettings =
    rec.side === 'on'
      ? {
          ...base,
          workerEnv: async () => {
            const port = await freePort()
            ports.push(port)
            return { METRICS_PORT: String(port) }
          },
        }
      : { ...base, apiEnv: { API_METRICS: 'false' } }
  let c: BenchCluster | undefined
  try {
    c = await openCluster(zk, nats, settings, `metrics${rec.side}`)
    const urls = [`${c.cluster.apiUrl}/metrics`, ...ports.map((p) => `http://127.0.0.1:${p}/metrics`)]
    const scrape = rec.side === 'on' ? scraper(urls) : undefined
    try {
      await throughputSingle(c, 500) // warm-up
      rec.single = await throughputSingle(c, jobs)
      rec.batch = await throughputBatch(c, jobs)
    } finally {
      const s = await scrape?.stop()
      rec.scrapes = s?.scrapes ?? 0
      rec.scrapeFailures = s?.failures ?? 0
    }
    progress(
      `run ${rec.run} metrics ${rec.side}: one by one ${Math.round(rec.single.jobsPerSec)} jobs/s, ` +
        `batches ${Math.round(rec.batch.jobsPerSec)} jobs/s` +
        (rec.side === 'on' ? ` (${rec.scrapes} scrapes, ${rec.scrapeFailures} failed)` : ''),
    )
  } catch (err) {
    rec.errors.push((err as Error).message)
    progress(`run ${rec.run} metrics ${rec.side}: ${(err as Error).message}`)
  } finally {
    await c?.close()
  }
}

export async function metricsBench(opts: MetricsBenchOptions = {}): Promise<BenchOutcome> {
  const runs = opts.runs ?? 5
  const jobs = opts.jobs ?? 20_000
  const base: ClusterSettings = {
    workers: opts.workers ?? 5,
    concurrency: opts.concurrency ?? 16,
    sessionTimeoutMs: 2000,
  }
  const zk = await startZooKeeper({ tickTime: 100 })
  let nats: Nats | undefined
  const records: SideRecord[] = []
  try {
    nats = await startNats()
    const started = nats
    await alternateSides(
      ['off', 'on'] as const,
      runs,
      (run, side): SideRecord => ({ run, side, machine: machineInfo(), scrapes: 0, scrapeFailures: 0, errors: [] }),
      (rec) => measureSide(zk, started, base, jobs, rec),
      records,
    )
  } finally {
    await nats?.close()
    await zk.close()
  }
  const of = (side: Side, f: (r: SideRecord) => number | undefined) => sideValues(records, side, f)
  const single = (r: SideRecord) => r.single?.jobsPerSec
  const batch = (r: SideRecord) => r.batch?.jobsPerSec
  const ratio = (f: (r: SideRecord) => number | undefined) => summarize([medianRatio(of('on', f), of('off', f))])
  const rows: Row[] = [
    {
      name: `one by one, metrics off (${jobs} noop, 64 in flight)`,
      unit: 'jobs/s',
      summary: summarize(of('off', single)),
    },
    { name: '  metrics on, scraped every 1 s', unit: 'jobs/s', summary: summarize(of('on', single)) },
    { name: '  on / off (medians)', unit: '×', summary: ratio(single) },
    { name: 'batches of 500, metrics off', unit: 'jobs/s', summary: summarize(of('off', batch)) },
    { name: '  metrics on, scraped every 1 s', unit: 'jobs/s', summary: summarize(of('on', batch)) },
    { name: '  on / off (medians)', unit: '×', summary: ratio(batch) },
  ]
  return { rows, data: { settings: { runs, jobs, ...base, scrapeIntervalMs: 1000 }, runs: records } }
}
