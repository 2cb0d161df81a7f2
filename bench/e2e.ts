/**
 * End-to-end benchmark on a local cluster: ZooKeeper (tickTime 100) and NATS started once, then per
 * run two fresh clusters (new BOSUN_CLUSTER names, servers reused) of an API and 5 worker processes
 * (1 boss + 4 job-running workers, WORKER_CONCURRENCY 16, LOG_LEVEL warn, ZK_SESSION_TIMEOUT_MS 2000):
 * - cluster A: throughput of `noop` jobs submitted one by one (64 in flight) and in batches of 500,
 *   ZooKeeper packets per job (minus an idle interval of equal length), then ?wait latency at an
 *   open-loop 200 jobs/s;
 * - cluster B (its store holds only the failover stream): boss failover after kill -9 and after SIGTERM.
 * Optionally (--profile) one extra throughput run with the API and the boss CPU-profiled, summarised.
 */
import { startNats, startZooKeeper } from '../test/helpers/servers.js'
import { openCluster, type BenchCluster, type ClusterSettings, type Nats, type Zk } from './e2e/cluster.js'
import { failover, type FailoverResult } from './e2e/failover.js'
import { latency, type LatencyResult } from './e2e/latency.js'
import { profiledRun, type ProfileResult } from './e2e/profile.js'
import { idleZkPackets, throughputBatch, throughputSingle, type ThroughputResult } from './e2e/throughput.js'
import { machineInfo, progress, summarize, type Row } from './lib/report.js'
import type { BenchOutcome } from './runtime.js'

export interface E2eBenchOptions {
  /** @defaultValue 3 */
  runs?: number
  /** Jobs per throughput measurement. @defaultValue 20000 */
  jobs?: number
  /** @defaultValue 10 */
  latencySeconds?: number
  /** @defaultValue 200 */
  latencyRate?: number
  /** @defaultValue 100 */
  failoverRate?: number
  /** @defaultValue 2000 */
  sessionTimeoutMs?: number
  /** One extra throughput run (one by one, or 'batch') with every process CPU-profiled. @defaultValue false */
  profile?: boolean | 'batch'
  /** Worker processes (one becomes the boss). @defaultValue 5 */
  workers?: number
  /** WORKER_CONCURRENCY. @defaultValue 16 */
  concurrency?: number
  /** Skip phases (for partial runs): any of 'throughput', 'latency', 'failover'. */
  skip?: string[]
}

/** The resolved figures-affecting options. */
interface Resolved {
  runs: number
  jobs: number
  latencySeconds: number
  latencyRate: number
  failoverRate: number
  sessionTimeoutMs: number
}

interface RunRecord {
  run: number
  machine: Record<string, unknown>
  single?: ThroughputResult
  batch?: ThroughputResult
  idle?: { ms: number; received: number }
  zkPerJobSingle?: number
  zkPerJobBatch?: number
  latency?: LatencyResult
  kill?: FailoverResult
  term?: FailoverResult
  errors: string[]
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function phase<T>(rec: RunRecord, what: string, fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn()
  } catch (err) {
    const msg = `${what}: ${err instanceof Error ? err.message : String(err)}`
    rec.errors.push(msg)
    progress(`run ${rec.run} ${msg}`)
    return undefined
  }
}

function zkPerJob(t: ThroughputResult, idle: { ms: number; received: number }): number {
  return (t.zkPacketsReceived - idle.received * (t.totalMs / idle.ms)) / t.jobs
}

/** A cluster that fails to get ready (a loaded machine: sessions flap) is tried once more under a new name. */
async function openWithRetry(
  zk: Zk,
  nats: Nats,
  s: ClusterSettings,
  prefix: string,
  rec: RunRecord,
): Promise<BenchCluster> {
  try {
    return await openCluster(zk, nats, s, prefix)
  } catch (err) {
    rec.errors.push(`${prefix} start (retried): ${(err as Error).message}`)
    progress(`run ${rec.run}: ${prefix} cluster did not get ready; trying once more`)
    return openCluster(zk, nats, s, prefix)
  }
}

async function clusterA(
  zk: Zk,
  nats: Nats,
  s: ClusterSettings,
  o: Resolved,
  skip: Set<string>,
  rec: RunRecord,
): Promise<void> {
  let c: BenchCluster | undefined
  try {
    c = await openWithRetry(zk, nats, s, 'bencha', rec)
    const cl = c
    progress(`run ${rec.run}: cluster ${cl.name} ready`)
    if (!skip.has('throughput')) {
      await phase(rec, 'warm-up', () => throughputSingle(cl, 500))
      rec.single = await phase(rec, 'throughput one by one', () => throughputSingle(cl, o.jobs))
      if (rec.single)
        progress(
          `run ${rec.run}: one by one ${Math.round(rec.single.jobsPerSec)} jobs/s ` +
            `(submit ${Math.round(rec.single.submitPerSec)}/s)`,
        )
      await sleep(1000)
      // Idle interval of the same length (capped at 30 s; the subtraction scales it by duration).
      rec.idle = await phase(rec, 'idle interval', () =>
        idleZkPackets(cl, Math.min(30_000, rec.single?.totalMs ?? 10_000)),
      )
      rec.batch = await phase(rec, 'throughput batches', () => throughputBatch(cl, o.jobs))
      if (rec.batch)
        progress(
          `run ${rec.run}: batches ${Math.round(rec.batch.jobsPerSec)} jobs/s ` +
            `(submit ${Math.round(rec.batch.submitPerSec)}/s)`,
        )
      if (rec.idle && rec.single) rec.zkPerJobSingle = zkPerJob(rec.single, rec.idle)
      if (rec.idle && rec.batch) rec.zkPerJobBatch = zkPerJob(rec.batch, rec.idle)
    }
    if (!skip.has('latency')) {
      rec.latency = await phase(rec, 'latency', () => latency(cl, o.latencyRate, o.latencySeconds))
      if (rec.latency)
        progress(
          `run ${rec.run}: latency p50 ${rec.latency.p50Ms} ms, p99 ${rec.latency.p99Ms} ms, ` +
            `failures ${rec.latency.failures}`,
        )
    }
  } catch (err) {
    rec.errors.push(`cluster A: ${(err as Error).message}`)
  } finally {
    await c?.close()
  }
}

async function clusterB(zk: Zk, nats: Nats, s: ClusterSettings, o: Resolved, rec: RunRecord): Promise<void> {
  let c: BenchCluster | undefined
  try {
    c = await openWithRetry(zk, nats, s, 'benchb', rec)
    const cl = c
    rec.kill = await phase(rec, 'failover kill -9', () => failover(cl, 'SIGKILL', o.sessionTimeoutMs, o.failoverRate))
    if (rec.kill)
      progress(
        `run ${rec.run}: kill -9 → new boss completes after ${rec.kill.firstNewBossCompletionMs} ms, ` +
          `gap ${rec.kill.gapMs} ms`,
      )
    rec.term = await phase(rec, 'failover SIGTERM', () => failover(cl, 'SIGTERM', o.sessionTimeoutMs, o.failoverRate))
    if (rec.term)
      progress(
        `run ${rec.run}: SIGTERM → new boss completes after ${rec.term.firstNewBossCompletionMs} ms, ` +
          `gap ${rec.term.gapMs} ms`,
      )
  } catch (err) {
    rec.errors.push(`cluster B: ${(err as Error).message}`)
  } finally {
    await c?.close()
  }
}

function rows(records: RunRecord[], sessionTimeoutMs: number, o: { jobs: number; latencyRate: number }): Row[] {
  const col = (f: (r: RunRecord) => number | undefined) => summarize(records.map((r) => f(r) ?? Number.NaN))
  const st = sessionTimeoutMs
  return [
    {
      name: `throughput, POST /jobs one by one, 64 in flight, ${o.jobs} noop`,
      unit: 'jobs/s',
      summary: col((r) => r.single?.jobsPerSec),
      target: { kind: 'min', limit: 7000 },
    },
    { name: '  submit-only rate, one by one', unit: 'jobs/s', summary: col((r) => r.single?.submitPerSec) },
    {
      name: `throughput, POST /jobs/batch of 500, 4 in flight`,
      unit: 'jobs/s',
      summary: col((r) => r.batch?.jobsPerSec),
      target: { kind: 'min', limit: 7000 },
    },
    { name: '  submit-only rate, batches', unit: 'jobs/s', summary: col((r) => r.batch?.submitPerSec) },
    {
      name: `latency ?wait p50 @ ${o.latencyRate}/s open loop`,
      unit: 'ms',
      summary: col((r) => r.latency?.p50Ms),
      target: { kind: 'max', limit: 2 },
    },
    { name: '  latency p95', unit: 'ms', summary: col((r) => r.latency?.p95Ms) },
    { name: '  latency p99', unit: 'ms', summary: col((r) => r.latency?.p99Ms), target: { kind: 'max', limit: 15 } },
    { name: '  latency max', unit: 'ms', summary: col((r) => r.latency?.maxMs) },
    { name: '  latency failures (not 200/succeeded)', unit: 'requests', summary: col((r) => r.latency?.failures) },
    {
      name: 'failover SIGTERM: signal → new boss completes',
      unit: 'ms',
      summary: col((r) => r.term?.firstNewBossCompletionMs),
      target: { kind: 'max', limit: 200 },
    },
    {
      name: '  SIGTERM: longest completion gap',
      unit: 'ms',
      summary: col((r) => r.term?.gapMs),
      target: { kind: 'max', limit: 200 },
    },
    {
      name: `failover kill -9 (session ${st} ms): signal → new boss completes`,
      unit: 'ms',
      summary: col((r) => r.kill?.firstNewBossCompletionMs),
      target: { kind: 'max', limit: st + 500 },
    },
    {
      name: '  kill -9: longest completion gap',
      unit: 'ms',
      summary: col((r) => r.kill?.gapMs),
      target: { kind: 'max', limit: st + 500 },
    },
    {
      name: '  jobs not completed after a failover',
      unit: 'jobs',
      summary: col((r) => (r.kill || r.term ? (r.kill?.incomplete ?? 0) + (r.term?.incomplete ?? 0) : undefined)),
    },
    {
      name: 'ZooKeeper requests per job, one by one (minus idle)',
      unit: 'req/job',
      summary: col((r) => r.zkPerJobSingle),
      target: { kind: 'max', limit: 0.01 },
      note: '(target 0; ±0.01 is noise)',
    },
    {
      name: 'ZooKeeper requests per job, batches (minus idle)',
      unit: 'req/job',
      summary: col((r) => r.zkPerJobBatch),
      target: { kind: 'max', limit: 0.01 },
    },
  ]
}

/** Run the e2e benchmark on its own ZooKeeper and NATS (both stopped at the end). */
export async function e2eBench(opts: E2eBenchOptions = {}): Promise<BenchOutcome & { profile?: ProfileResult }> {
  const o: Resolved = {
    runs: opts.runs ?? 3,
    jobs: opts.jobs ?? 20_000,
    latencySeconds: opts.latencySeconds ?? 10,
    latencyRate: opts.latencyRate ?? 200,
    failoverRate: opts.failoverRate ?? 100,
    sessionTimeoutMs: opts.sessionTimeoutMs ?? 2000,
  }
  const skip = new Set(opts.skip ?? [])
  const settings: ClusterSettings = {
    workers: opts.workers ?? 5,
    concurrency: opts.concurrency ?? 16,
    sessionTimeoutMs: o.sessionTimeoutMs,
  }
  const zk = await startZooKeeper({ tickTime: 100 })
  let nats: Nats | undefined
  const records: RunRecord[] = []
  let profile: ProfileResult | undefined
  try {
    nats = await startNats()
    progress(`e2e: ZooKeeper ${zk.connect}, NATS ${nats.url}`)
    for (let run = 1; run <= o.runs; run++) {
      const rec: RunRecord = { run, machine: machineInfo(), errors: [] }
      records.push(rec)
      await clusterA(zk, nats, settings, o, skip, rec)
      if (!skip.has('failover')) await clusterB(zk, nats, settings, o, rec)
    }
    if (opts.profile) {
      try {
        const mode = opts.profile === 'batch' ? 'batch' : 'single'
        profile = await profiledRun(zk, nats, settings, o.jobs, mode)
        process.stdout.write(
          `\n== CPU profile of one throughput run (${mode === 'batch' ? 'batches' : 'one by one'}) ==\n` + profile.text,
        )
      } catch (err) {
        progress(`profile run failed: ${(err as Error).message}`)
      }
    }
  } finally {
    await nats?.close()
    await zk.close()
  }
  return {
    rows: rows(records, o.sessionTimeoutMs, o),
    data: {
      settings: { ...o, workers: settings.workers, concurrency: settings.concurrency, zkTickTimeMs: 100 },
      runs: records,
      ...(profile ? { profile: { dir: profile.dir, throughput: profile.throughput, profiles: profile.profiles } } : {}),
    },
    ...(profile ? { profile } : {}),
  }
}
