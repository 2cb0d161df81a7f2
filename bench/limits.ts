/**
 * What limits cost when they do not bind (README "Limits"): the e2e throughput runs
 * (bench/e2e/throughput.ts, `noop` jobs one by one and in batches) on clusters without limits,
 * with a concurrency limit far above what runs, and with that plus a rate limit far above the
 * throughput — the rate limit makes the boss write its rate window before each dispatch round
 * (worker/boss/rate-ledger.ts). Sides alternate their order per run so the machine's drift hits
 * all; prints each side and its ratio to no limits (medians); the JSON has every run.
 */
import { startNats, startZooKeeper } from '../test/helpers/servers.js'
import { openCluster, type BenchCluster, type ClusterSettings, type Nats } from './e2e/cluster.js'
import { throughputBatch, throughputSingle, type ThroughputResult } from './e2e/throughput.js'
import { machineInfo, progress, summarize, type Row } from './lib/report.js'
import { alternateSides, medianRatio, sideValues } from './lib/sides.js'
import type { BenchOutcome } from './runtime.js'

export interface LimitsBenchOptions {
  /** @defaultValue 5 */
  runs?: number
  /** Jobs per throughput measurement. @defaultValue 20000 */
  jobs?: number
  /** @defaultValue 5 */
  workers?: number
  /** @defaultValue 16 */
  concurrency?: number
}

const SIDES = {
  none: undefined,
  concurrency: { concurrency: 10_000 },
  rate: { concurrency: 10_000, rateLimit: { max: 10_000, perMs: 100 } },
} as const
type Side = keyof typeof SIDES

interface SideRecord {
  run: number
  side: Side
  machine: Record<string, unknown>
  single?: ThroughputResult
  batch?: ThroughputResult
  errors: string[]
}

/** Put the side's limits on `noop` and wait until the API reads them back in force. */
async function applyLimits(c: BenchCluster, side: Side): Promise<void> {
  const body = SIDES[side]
  if (!body) return
  const put = await fetch(`${c.cluster.apiUrl}/functions/noop/limits`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  if (put.status !== 200) throw new Error(`PUT limits: ${put.status} ${await put.text()}`)
  await new Promise((r) => setTimeout(r, 500)) // the boss follows the bucket within milliseconds
}

async function measureSide(
  zk: Parameters<typeof openCluster>[0],
  nats: Nats,
  base: ClusterSettings,
  jobs: number,
  rec: SideRecord,
) {
  let c: BenchCluster | undefined
  try {
    c = await openCluster(zk, nats, base, `limits${rec.side}`)
    await applyLimits(c, rec.side)
    await throughputSingle(c, 500) // warm-up
    rec.single = await throughputSingle(c, jobs)
    rec.batch = await throughputBatch(c, jobs)
    progress(
      `run ${rec.run} limits ${rec.side}: one by one ${Math.round(rec.single.jobsPerSec)} jobs/s, ` +
        `batches ${Math.round(rec.batch.jobsPerSec)} jobs/s`,
    )
  } catch (err) {
    rec.errors.push((err as Error).message)
    progress(`run ${rec.run} limits ${rec.side}: ${(err as Error).message}`)
  } finally {
    await c?.close()
  }
}

export async function limitsBench(opts: LimitsBenchOptions = {}): Promise<BenchOutcome> {
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
      Object.keys(SIDES) as Side[],
      runs,
      (run, side): SideRecord => ({ run, side, machine: machineInfo(), errors: [] }),
      (rec) => measureSide(zk, started, base, jobs, rec),
      records,
    )
  } finally {
    await nats?.close()
    await zk.close()
  }
  const rows: Row[] = []
  for (const [label, f] of [
    [`one by one (${jobs} noop, 64 in flight)`, (r: SideRecord) => r.single?.jobsPerSec],
    ['batches of 500', (r: SideRecord) => r.batch?.jobsPerSec],
  ] as const) {
    const none = sideValues(records, 'none', f)
    rows.push({ name: `${label}, no limits`, unit: 'jobs/s', summary: summarize(none) })
    for (const side of ['concurrency', 'rate'] as const) {
      const name = side === 'concurrency' ? 'concurrency 10,000' : 'concurrency 10,000 + rate 10,000 per 100 ms'
      const values = sideValues(records, side, f)
      rows.push({ name: `  ${name}`, unit: 'jobs/s', summary: summarize(values) })
      rows.push({ name: '    / no limits (medians)', unit: '×', summary: summarize([medianRatio(values, none)]) })
    }
  }
  return { rows, data: { settings: { runs, jobs, ...base, limits: SIDES }, runs: records } }
}
