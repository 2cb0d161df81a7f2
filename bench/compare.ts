/**
 * bosun and BullMQ side by side, on the same machine in the same invocation (`npm run bench:compare`).
 * ZooKeeper and NATS are started once; each run starts, in alternating order (bosun first in odd
 * runs, BullMQ first in even ones, so drift hits both), a fresh bosun cluster and a fresh BullMQ
 * system (its own redis-server, AOF everysec), each with the same number of job-running processes ×
 * the same concurrency, and drives both through the same steps with the same load generators
 * (compare/measure.ts): warm-up (`warmup` unmeasured jobs of every workload the side is measured
 * on, so the 20,000-job rows measure a warm system rather than a fresh process's JIT), then 20,000
 * jobs by native client in batches of 500 and one by one (64 in flight), the same over HTTP, ?wait
 * latency at an open-loop rate, then 200,000 jobs each by native batches, native one by one and HTTP
 * batches on the store that by then holds the earlier runs' jobs.
 * Execution model: the main pair runs functions on worker threads on both sides (bosun
 * FUNCTION_ISOLATION=threads; BullMQ `useWorkerThreads` sandboxed processors). A second pair runs
 * BullMQ's default inline processors against bosun's inline functions when --bosun-inline gives the
 * workers' FUNCTION_ISOLATION value for it; without it that row's bosun side is left planned.
 * Node settings: bosun's processes set V8 flags for themselves (runner/v8-tuning.ts); BullMQ's
 * processes set the same ones (compare/child.ts) unless --bullmq-node-defaults, because those flags
 * speed up any fresh Node process (README "Benchmarks", "A fresh process's warm-up").
 */
import { cpus, loadavg } from 'node:os'
import { startNats, startZooKeeper } from '../test/helpers/servers.js'
import { startBosun } from './compare/bosun-side.js'
import { startBullmq } from './compare/bullmq-side.js'
import { latency, type LatencyResult } from './compare/latency.js'
import { measureFloor, type FloorResult } from './compare/floor.js'
import { throughput, type System, type ThroughputResult, type Workload } from './compare/measure.js'
import { ensureRedis } from './compare/redis.js'
import { formatCpu, formatPairs, pairRow, type PairRow } from './compare/table.js'
import type { Nats, Zk } from './e2e/cluster.js'
import { machineInfo, progress } from './lib/report.js'
import { BOSUN_V8_FLAGS } from '../runner/v8-flags.js'

export interface CompareOptions {
  /** Pairs of runs (one bosun, one BullMQ each). @defaultValue 3 */
  runs?: number
  /** Jobs of the throughput rows. @defaultValue 20000 */
  jobs?: number
  /** Jobs of the long rows (0: skip them). @defaultValue 200000 */
  bigJobs?: number
  /** @defaultValue 10 */
  latencySeconds?: number
  /** @defaultValue 200 */
  latencyRate?: number
  /** bosun worker processes (one becomes the boss); BullMQ gets workers − 1 job-running processes. @defaultValue 5 */
  workers?: number
  /** Jobs at once per job-running process. @defaultValue 16 */
  concurrency?: number
  /** FUNCTION_ISOLATION of bosun's workers in the inline pair (undefined: the pair's bosun side is planned). */
  bosunInline?: string
  /** Leave out step groups: any of 'native', 'http', 'latency', 'big', 'inline'. */
  skip?: string[]
  /**
   * V8 flags every BullMQ process (its workers and front) sets for itself. @defaultValue the flags
   * bosun's processes set (runner/v8-flags.ts), so both sides run on the same Node settings; `[]`
   * runs BullMQ on Node's defaults, as it ships (`--bullmq-node-defaults`).
   */
  bullmqV8Flags?: readonly string[]
  /** WORKER_PREFETCH of bosun's workers (undefined: their default; 0 runs them without prefetch). */
  bosunPrefetch?: number
  /**
   * Unmeasured jobs of each workload a side is measured on, run before its measured rows (after a
   * smoke check of 1,000 jobs in batches and 500 over HTTP); 0 leaves only the smoke check.
   * @defaultValue 20000
   */
  warmup?: number
}

type Side = System['side']
type Model = 'threads' | 'inline'

interface Step {
  key: string
  name: string
  workload: Workload
  jobs: number
  group: 'native' | 'http'
  big?: boolean
}

interface SideRun {
  run: number
  side: Side
  model: Model
  /** bosun cluster or BullMQ queue name. */
  name?: string
  machine: Record<string, unknown>
  startMs?: number
  results: Record<string, ThroughputResult>
  latency?: LatencyResult
  /** One broker round trip at the latency rate (compare/floor.ts), measured after the latency step. */
  floor?: FloorResult
  /** redis-server INFO at the end (memory, AOF size), BullMQ only. */
  redis?: Record<string, string>
  errors: string[]
}

const k = (n: number) => (n % 1000 === 0 ? `${n / 1000}k` : String(n))

type Resolved = Required<Omit<CompareOptions, 'bosunInline' | 'skip' | 'bosunPrefetch'>> &
  Pick<CompareOptions, 'bosunInline' | 'bosunPrefetch'>

/** The throughput steps in the order every side runs them (the long rows last). */
function steps(o: Resolved, skip: Set<string>, model: Model): Step[] {
  const step = (workload: Workload, jobs: number, name: string, big = false): Step => ({
    key: `${workload.replace(/-/g, ' ')} ${k(jobs)}`,
    name: `${name}, ${k(jobs)} jobs`,
    workload,
    jobs,
    group: workload.startsWith('http') ? 'http' : 'native',
    ...(big ? { big } : {}),
  })
  const all = [
    step('native-batch', o.jobs, 'native batch of 500: submitBatch vs addBulk, 4 in flight'),
    step('native-one', o.jobs, 'native one by one, 64 in flight: submit vs add'),
    step('http-batch', o.jobs, 'HTTP POST /jobs/batch of 500, 4 in flight (front: addBulk)'),
    step('http-one', o.jobs, 'HTTP POST /jobs one by one, 64 in flight (front: add)'),
    step('native-batch', o.bigJobs, 'native batch of 500', true),
    step('native-one', o.bigJobs, 'native one by one, 64 in flight', true),
    step('http-batch', o.bigJobs, 'HTTP POST /jobs/batch of 500', true),
  ]
  if (model === 'inline') return all.slice(0, 2).filter((s) => !skip.has(s.group))
  return all.filter((s) => !skip.has(s.group) && !(s.big && (skip.has('big') || o.bigJobs === 0)))
}

/** Start one side's system for the execution model. */
async function start(side: Side, model: Model, zk: Zk, nats: Nats, o: Resolved) {
  if (side === 'bosun') {
    const isolation = model === 'threads' ? 'threads' : o.bosunInline!
    return startBosun(zk, nats, {
      workers: o.workers,
      concurrency: o.concurrency,
      isolation,
      sessionTimeoutMs: 2000,
      ...(o.bosunPrefetch === undefined ? {} : { prefetch: o.bosunPrefetch }),
    })
  }
  const mode = model === 'threads' ? 'sandboxed' : 'inline'
  return startBullmq({ processes: o.workers - 1, concurrency: o.concurrency, mode, v8Flags: o.bullmqV8Flags })
}

/** One side's run: start its system, warm up, run the steps (and latency) in order, stop it. */
async function sideRun(
  rec: SideRun,
  zk: Zk,
  nats: Nats,
  o: Resolved,
  plan: Step[],
  withLatency: boolean,
): Promise<void> {
  const tag = `run ${rec.run} ${rec.side} (${rec.model})`
  const t0 = performance.now()
  let sys: Awaited<ReturnType<typeof start>> | undefined
  try {
    sys = await start(rec.side, rec.model, zk, nats, o)
    rec.name = 'cluster' in sys ? sys.cluster : sys.queue
    rec.startMs = Math.round(performance.now() - t0)
    progress(`${tag}: ${rec.name} ready in ${rec.startMs} ms (load average ${loadavg()[0]!.toFixed(1)})`)
    await throughput(sys, 'native-batch', 1000)
    await throughput(sys, 'http-one', 500)
    const main = plan.filter((s) => !s.big)
    if (o.warmup > 0) {
      const tw = performance.now()
      for (const workload of new Set(main.map((s) => s.workload))) await throughput(sys, workload, o.warmup)
      progress(`${tag}: warm-up (${o.warmup} jobs of each workload) ${Math.round(performance.now() - tw)} ms`)
    }
    const step = async (s: Step, submitRate: boolean) => {
      const r = await throughput(sys!, s.workload, s.jobs)
      rec.results[s.key] = r
      if (r.failed) rec.errors.push(`${s.key}: ${r.failed} of ${s.jobs} jobs failed`)
      progress(
        `${tag}: ${s.key} ${Math.round(r.jobsPerSec)} jobs/s` +
          (submitRate ? ` (submit ${Math.round(r.submitPerSec)}/s)` : '') +
          `, ${r.cpuUsPerJob.total} µs CPU/job${r.failed ? `, ${r.failed} FAILED` : ''}`,
      )
    }
    for (const s of main) await step(s, true)
    if (withLatency) {
      rec.latency = await latency(sys, o.latencyRate, o.latencySeconds)
      progress(
        `${tag}: latency p50 ${rec.latency.p50Ms} ms, p99 ${rec.latency.p99Ms} ms, failures ${rec.latency.failures}`,
      )
      if (rec.latency.failures) rec.errors.push(`latency: ${rec.latency.failures} requests failed`)
      const probe = await sys.roundTripProbe()
      try {
        rec.floor = await measureFloor(probe, o.latencyRate, Math.min(o.latencySeconds, 5))
      } finally {
        await probe.close()
      }
      progress(`${tag}: broker round trip p50 ${rec.floor.p50Ms} ms, p99 ${rec.floor.p99Ms} ms`)
    }
    for (const s of plan.filter((x) => x.big)) await step(s, false)
    if ('redis' in sys) {
      const info = sys.redis.info()
      rec.redis = Object.fromEntries(
        ['used_memory_human', 'used_memory_rss_human', 'aof_current_size', 'aof_rewrites', 'redis_version']
          .map((f) => [f, info[f] ?? '']),
      ) // prettier-ignore
    }
  } catch (err) {
    rec.errors.push((err as Error).message)
    progress(`${tag} failed: ${(err as Error).message}`)
  } finally {
    await sys?.close().catch((err: Error) => rec.errors.push(`close: ${err.message}`))
  }
}

function rows(records: SideRun[], plan: Step[], inlinePlan: Step[], o: CompareOptions & { latencyRate: number }) {
  const per = (side: Side, model: Model, f: (r: SideRun) => number | undefined) =>
    records.filter((r) => r.side === side && r.model === model).map((r) => f(r) ?? Number.NaN)
  const pair = (name: string, unit: string, model: Model, f: (r: SideRun) => number | undefined, note?: string) =>
    pairRow(name, unit, per('bosun', model, f), per('bullmq', model, f), note)
  const out: PairRow[] = []
  for (const s of plan) {
    out.push(pair(s.name, 'jobs/s', 'threads', (r) => r.results[s.key]?.jobsPerSec))
    out.push(pair('  CPU per job, all processes', 'µs/job', 'threads', (r) => r.results[s.key]?.cpuUsPerJob.total))
    out.push(pair('  submit-only rate', 'jobs/s', 'threads', (r) => r.results[s.key]?.submitPerSec))
  }
  if (records.some((r) => r.latency)) {
    const at = `@ ${o.latencyRate}/s open loop`
    out.push(pair(`latency ?wait (front: add + waitUntilFinished) p50 ${at}`, 'ms', 'threads', (r) => r.latency?.p50Ms))
    out.push(pair('  latency p99', 'ms', 'threads', (r) => r.latency?.p99Ms))
    out.push(pair('  failures', 'requests', 'threads', (r) => r.latency?.failures))
    out.push(pair('  CPU per request, all processes', 'µs/job', 'threads', (r) => r.latency?.cpuUsPerJob.total))
    const floor = `floor: one broker round trip (NATS request to a process / Redis PING) p50 ${at}`
    out.push(pair(floor, 'ms', 'threads', (r) => r.floor?.p50Ms))
    out.push(pair('  round trip p99', 'ms', 'threads', (r) => r.floor?.p99Ms))
  }
  const planned = o.bosunInline ? `bosun FUNCTION_ISOLATION=${o.bosunInline}` : 'bosun side planned: --bosun-inline'
  for (const s of inlinePlan) {
    out.push(pair(`inline: ${s.name}`, 'jobs/s', 'inline', (r) => r.results[s.key]?.jobsPerSec, planned))
    out.push(pair('  CPU per job, all processes', 'µs/job', 'inline', (r) => r.results[s.key]?.cpuUsPerJob.total))
  }
  return out
}

const some = <T>(x: T | undefined): T[] => (x === undefined ? [] : [x])

function cpuTables(records: SideRun[], plan: Step[], inlinePlan: Step[]): string {
  let text = ''
  for (const [model, p] of [
    ['threads', plan],
    ['inline', inlinePlan],
  ] as const)
    for (const side of ['bosun', 'bullmq'] as const) {
      const mine = records.filter((r) => r.side === side && r.model === model)
      if (mine.length === 0 || p.length === 0) continue
      const columns = p.map((s) => ({ key: s.key, values: mine.flatMap((r) => some(r.results[s.key]?.cpuUsPerJob)) }))
      if (model === 'threads' && mine.some((r) => r.latency))
        columns.push({ key: 'latency', values: mine.flatMap((r) => some(r.latency?.cpuUsPerJob)) })
      const who = side === 'bosun' ? 'bosun' : `BullMQ ${model === 'threads' ? 'sandboxed (worker threads)' : 'inline'}`
      text += formatCpu(`CPU per job per process, ${who}, ${model} pair (medians)`, columns)
    }
  return text
}

/** Run the comparison; returns the printed text, the pair rows and everything measured. */
export async function compareBench(opts: CompareOptions = {}) {
  const o = {
    runs: opts.runs ?? 3,
    jobs: opts.jobs ?? 20_000,
    bigJobs: opts.bigJobs ?? 200_000,
    latencySeconds: opts.latencySeconds ?? 10,
    latencyRate: opts.latencyRate ?? 200,
    workers: opts.workers ?? 5,
    concurrency: opts.concurrency ?? 16,
    bullmqV8Flags: opts.bullmqV8Flags ?? BOSUN_V8_FLAGS,
    warmup: opts.warmup ?? 20_000,
    ...(opts.bosunInline ? { bosunInline: opts.bosunInline } : {}),
    ...(opts.bosunPrefetch === undefined ? {} : { bosunPrefetch: opts.bosunPrefetch }),
  }
  if (o.workers < 2) throw new Error('--workers must be ≥ 2 (one becomes the boss)')
  const skip = new Set(opts.skip ?? [])
  const plan = steps(o, skip, 'threads')
  const inlinePlan = skip.has('inline') ? [] : steps(o, skip, 'inline')
  const withLatency = !skip.has('latency') && !skip.has('http')
  ensureRedis()
  const zk = await startZooKeeper({ tickTime: 100 })
  let nats: Nats | undefined
  const records: SideRun[] = []
  try {
    nats = await startNats()
    progress(`compare: ZooKeeper ${zk.connect}, NATS ${nats.url}`)
    for (let run = 1; run <= o.runs; run++) {
      const order: Side[] = run % 2 === 1 ? ['bosun', 'bullmq'] : ['bullmq', 'bosun']
      for (const side of order) {
        const rec: SideRun = { run, side, model: 'threads', machine: machineInfo(), results: {}, errors: [] }
        records.push(rec)
        await sideRun(rec, zk, nats, o, plan, withLatency)
      }
      if (inlinePlan.length === 0) continue
      for (const side of order) {
        if (side === 'bosun' && !o.bosunInline) continue
        const rec: SideRun = { run, side, model: 'inline', machine: machineInfo(), results: {}, errors: [] }
        records.push(rec)
        await sideRun(rec, zk, nats, o, inlinePlan, false)
      }
    }
  } finally {
    await nats?.close()
    await zk.close()
  }
  const pairRows = rows(records, plan, inlinePlan, o)
  const b = o.workers
  const title =
    `bosun vs BullMQ, same sitting, medians of ${o.runs} run(s), ratio = bosun / BullMQ — bosun: API + ${b} ` +
    `workers (1 boss + ${b - 1}) × ${o.concurrency}; BullMQ: redis-server + ${b - 1} workers × ${o.concurrency} ` +
    `(+ Fastify front for HTTP); BullMQ's V8 flags: ${o.bullmqV8Flags.join(' ') || "Node's defaults"}`
  const load = (r: SideRun) => ((r.machine.loadavg as number[] | undefined)?.[0] ?? Number.NaN).toFixed(1)
  const notes = [
    `load average (1 min) when each side started, ${cpus().length} cores: ` +
      records.map((r) => `${r.side}${r.model === 'inline' ? ' inline' : ''} #${r.run} ${load(r)}`).join(', '),
    ...records.flatMap((r) => r.errors.map((e) => `error: ${r.side} (${r.model}) run ${r.run}: ${e}`)),
  ]
  const text = formatPairs(title, pairRows) + cpuTables(records, plan, inlinePlan) + '\n' + notes.join('\n') + '\n'
  return {
    text,
    rows: pairRows,
    data: {
      settings: { ...o, batchSize: 500, batchesInFlight: 4, oneByOneInFlight: 64, pollMs: 50, skip: [...skip] },
      durability: {
        bosun: 'NATS JetStream file store, R1 (one nats-server 2.9.x, default sync: fsync every 2 min)',
        bullmq: 'redis-server --appendonly yes --appendfsync everysec --save ""',
      },
      steps: plan,
      inlineSteps: inlinePlan,
      runs: records,
    },
  }
}
