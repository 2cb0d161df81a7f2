/**
 * `node dist/bench/run.js [runtime|e2e|history|compare|metrics|limits|micro|all] [--quick] [--profile]
 * [--runs=N] [--jobs=N] [--workers=N] [--concurrency=N] [--skip=throughput,latency,failover]
 * [--sizes=0,100000]` (after `npm run build`; `npm run bench` does runtime and e2e). Prints a table
 * per benchmark and writes bench/results/<name>-<timestamp>.json and bench/results/latest-<name>.json.
 * Every server and bosun process started here is stopped before exit.
 *
 * --quick: fewer runs and jobs (a smoke run of the harness, not figures to quote).
 * --profile (or --profile=batch): e2e only; one extra throughput run (one by one, or batches) with the API,
 * the boss and one worker CPU-profiled, summarised.
 * compare (bosun vs BullMQ, bench/compare.ts): also --big=N (jobs of the long batch rows, 0 = none),
 * --bosun-inline[=FUNCTION_ISOLATION] (run the inline pair's bosun side; bare flag: `declared`),
 * --skip=native,http,latency,big,inline, --bullmq-node-defaults (BullMQ's processes without the V8 flags
 * bosun's set for themselves; by default they get the same), --bosun-prefetch=N (bosun's WORKER_PREFETCH; 0 = off),
 * --warmup=N (unmeasured jobs of each workload before a side's measured rows; default 20,000, --quick 2,000).
 * --quick: 1 run, no 200,000-job rows, 5 s of latency.
 * metrics (bench/metrics.ts): throughput with metrics off vs on (scraped every second), alternating;
 * --runs, --jobs, --workers, --concurrency; --quick: 1 run of 2,000 jobs.
 * limits (bench/limits.ts): throughput without limits vs with limits that do not bind, alternating;
 * the same flags as metrics.
 * micro (bench/micro.ts): per-call costs behind choices in the boss's hot path (no servers, ≈ 10 s).
 * hops (bench/hops.ts): where a `?wait` request's time goes, message by message (--runs, --jobs: requests
 * per run, --workers; ≈ 1 minute).
 */
import type { E2eBenchOptions } from './e2e.js'
import { formatTable, progress, writeResults, type Row } from './lib/report.js'

type Which = 'runtime' | 'e2e' | 'history' | 'compare' | 'metrics' | 'limits' | 'micro' | 'hops' | 'all'

interface Args {
  which: Which
  quick: boolean
  /** --profile, or --profile=batch to profile the batch throughput run. */
  profile: boolean | 'batch'
  /** --name=value flags. */
  flags: Map<string, string>
}

const USAGE =
  'usage: node dist/bench/run.js [runtime|e2e|history|compare|metrics|limits|micro|hops|all] [--quick]\n' +
  '  [--profile[=batch]] [--runs=N] [--jobs=N] [--workers=N] [--concurrency=N] [--skip=…] [--sizes=0,100000]\n' +
  '  [--big=N] [--bosun-inline[=…]] [--bullmq-node-defaults] [--bosun-prefetch=N] [--warmup=N]\n' +
  '  (the header of bench/run.ts says what each does)\n'
const VALUE_FLAGS = new Set([
  'runs',
  'jobs',
  'workers',
  'concurrency',
  'skip',
  'sizes',
  'big',
  'bosun-inline',
  'bosun-prefetch',
  'warmup',
  'profile',
])
const BARE_FLAGS = new Set(['--quick', '--profile', '--bosun-inline', '--bullmq-node-defaults'])

/** Bad arguments (an unknown flag included) print the usage and exit 2, `--help` prints it and exits 0. */
function usage(code: number): never {
  process[code === 0 ? 'stdout' : 'stderr'].write(USAGE)
  process.exit(code)
}

function parseArgs(argv: string[]): Args {
  if (argv.includes('--help') || argv.includes('-h')) usage(0)
  const positional = argv.filter((a) => !a.startsWith('-'))
  const which = (positional[0] ?? 'all') as Which
  if (
    !['runtime', 'e2e', 'history', 'compare', 'metrics', 'limits', 'micro', 'hops', 'all'].includes(which) ||
    positional.length > 1
  )
    usage(2)
  const flags = new Map<string, string>()
  for (const a of argv) {
    if (!a.startsWith('-') || BARE_FLAGS.has(a)) continue
    const m = /^--([a-z-]+)=(.*)$/.exec(a)
    if (!m || !VALUE_FLAGS.has(m[1]!)) {
      process.stderr.write(`unknown argument ${a}\n`)
      usage(2)
    }
    flags.set(m[1]!, m[2]!)
  }
  const profile = flags.get('profile') === 'batch' ? 'batch' : argv.includes('--profile')
  return { which, quick: argv.includes('--quick'), profile, flags }
}

/** --runs=0 is allowed (e.g. `e2e --profile --runs=0`: only the profiled run). */
function intFlag(flags: Map<string, string>, name: string): number | undefined {
  const v = flags.get(name)
  if (v === undefined) return undefined
  const n = Number(v)
  const min = name === 'runs' || name === 'big' || name === 'bosun-prefetch' || name === 'warmup' ? 0 : 1
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min}`)
  return n
}

async function main(): Promise<void> {
  const { which, quick, profile, flags } = parseArgs(process.argv.slice(2))
  const t0 = Date.now()
  const tables: string[] = []
  const finish = (name: string, title: string, rows: Row[], data: Record<string, unknown>) => {
    const table = formatTable(title, rows)
    tables.push(table)
    process.stdout.write(table)
    const file = writeResults(name, { quick, rows, ...data })
    progress(`wrote ${file}`)
  }
  if (which === 'runtime' || which === 'all') {
    const { runtimeBench } = await import('./runtime.js')
    const runs = intFlag(flags, 'runs')
    const r = await runtimeBench({ ...(quick ? { runs: 2, lookupMs: 300 } : {}), ...(runs ? { runs } : {}) })
    finish('runtime', 'runtime (ZooKeeper lookups, leader failover)', r.rows, r.data)
  }
  if (which === 'e2e' || which === 'all') {
    const { e2eBench } = await import('./e2e.js')
    const opts: E2eBenchOptions = {
      ...(quick ? { runs: 1, jobs: 2000, latencySeconds: 3 } : {}),
      profile,
      ...Object.fromEntries(
        ['runs', 'jobs', 'workers', 'concurrency'].flatMap((k) => (flags.has(k) ? [[k, intFlag(flags, k)]] : [])),
      ),
      ...(flags.has('skip') ? { skip: flags.get('skip')!.split(',') } : {}),
    }
    const r = await e2eBench(opts)
    const w = opts.workers ?? 5
    // A profile-only (--runs=0) or partial (--skip) run must not replace the latest full figures.
    finish(
      opts.runs === 0 ? 'e2e-profile' : opts.skip ? 'e2e-partial' : 'e2e',
      `e2e (local cluster: api + ${w} workers = 1 boss + ${w - 1} running jobs)`,
      r.rows,
      r.data,
    )
  }
  if (which === 'history') {
    const { historyBench } = await import('./history.js')
    const sizes = flags.get('sizes')?.split(',').map(Number)
    if (sizes?.some((n) => !Number.isInteger(n) || n < 0))
      throw new Error('--sizes must be comma-separated integers ≥ 0')
    const runs = intFlag(flags, 'runs')
    const r = await historyBench({
      ...(quick ? { sizes: [0, 20_000], runs: 1, listings: 50 } : {}),
      ...(sizes ? { sizes } : {}),
      ...(runs ? { runs } : {}),
    })
    // Only a full run (default sizes, 3+ runs) replaces latest-history.json, the figures README quotes.
    const full = !quick && !sizes && (runs ?? 3) >= 3
    finish(
      full ? 'history' : 'history-partial',
      'history (a cluster with finished jobs retained: memory, failover, listing)',
      r.rows,
      r.data,
    )
  }
  if (which === 'compare') {
    const { compareBench } = await import('./compare.js')
    const inline = process.argv.find((a) => a === '--bosun-inline' || a.startsWith('--bosun-inline='))
    const bullmqDefaults = process.argv.includes('--bullmq-node-defaults')
    const r = await compareBench({
      ...(quick ? { runs: 1, bigJobs: 0, latencySeconds: 5, warmup: 2000 } : {}),
      ...Object.fromEntries(
        ['runs', 'jobs', 'workers', 'concurrency'].flatMap((k) => (flags.has(k) ? [[k, intFlag(flags, k)]] : [])),
      ),
      ...(flags.has('big') ? { bigJobs: intFlag(flags, 'big') } : {}),
      ...(inline ? { bosunInline: flags.get('bosun-inline') ?? 'declared' } : {}),
      ...(flags.has('skip') ? { skip: flags.get('skip')!.split(',') } : {}),
      ...(bullmqDefaults ? { bullmqV8Flags: [] } : {}),
      ...(flags.has('bosun-prefetch') ? { bosunPrefetch: intFlag(flags, 'bosun-prefetch') } : {}),
      ...(flags.has('warmup') ? { warmup: intFlag(flags, 'warmup') } : {}),
    })
    process.stdout.write(r.text)
    // Only a full run (3+ runs, every row) replaces latest-compare.json, the figures README quotes.
    const full =
      !quick &&
      !flags.has('skip') &&
      !flags.has('jobs') &&
      !flags.has('big') &&
      !bullmqDefaults &&
      !flags.has('bosun-prefetch') &&
      !flags.has('warmup') &&
      (intFlag(flags, 'runs') ?? 3) >= 3
    const file = writeResults(full ? 'compare' : 'compare-partial', { quick, rows: r.rows, ...r.data })
    progress(`wrote ${file}`)
  }
  if (which === 'metrics') {
    const { metricsBench } = await import('./metrics.js')
    const r = await metricsBench({
      ...(quick ? { runs: 1, jobs: 2000 } : {}),
      ...Object.fromEntries(
        ['runs', 'jobs', 'workers', 'concurrency'].flatMap((k) => (flags.has(k) ? [[k, intFlag(flags, k)]] : [])),
      ),
    })
    // Only a full run (default jobs, 5+ runs) replaces latest-metrics.json, the figures README quotes.
    const full = !quick && !flags.has('jobs') && (intFlag(flags, 'runs') ?? 5) >= 5
    finish(full ? 'metrics' : 'metrics-partial', 'metrics off vs on (throughput, one sitting)', r.rows, r.data)
  }
  if (which === 'limits') {
    const { limitsBench } = await import('./limits.js')
    const r = await limitsBench({
      ...(quick ? { runs: 1, jobs: 2000 } : {}),
      ...Object.fromEntries(
        ['runs', 'jobs', 'workers', 'concurrency'].flatMap((k) => (flags.has(k) ? [[k, intFlag(flags, k)]] : [])),
      ),
    })
    const full = !quick && !flags.has('jobs') && (intFlag(flags, 'runs') ?? 5) >= 5
    finish(full ? 'limits' : 'limits-partial', 'limits that do not bind (throughput, one sitting)', r.rows, r.data)
  }
  if (which === 'micro') {
    const { microBench } = await import('./micro.js')
    const r = microBench()
    finish('micro', `micro (per call, Node ${process.version})`, r.rows, r.data)
  }
  if (which === 'hops') {
    const { hopsBench } = await import('./hops.js')
    const runs = intFlag(flags, 'runs')
    const requests = intFlag(flags, 'jobs')
    const workers = intFlag(flags, 'workers')
    const r = await hopsBench({
      ...(quick ? { runs: 1, requests: 500 } : {}),
      ...(runs ? { runs } : {}),
      ...(requests ? { requests } : {}),
      ...(workers ? { workers } : {}),
    })
    finish('hops', 'hops of a ?wait request (noop, one every 5 ms; as seen by a NATS observer)', r.rows, r.data)
  }
  if (tables.length > 1) process.stdout.write('\n' + tables.join(''))
  progress(`done in ${Math.round((Date.now() - t0) / 1000)} s`)
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(1)
  },
)
