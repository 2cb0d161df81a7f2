/**
 * Per-job overhead of the FunctionPool: many `echo`/`noop` jobs in flight, jobs/s and latency.
 * Not a test (tap runs *.test.ts only). Run from a build, as production does:
 *   npx tsc -p tsconfig.json --outDir .bench-dist
 *   node .bench-dist/test/executor/bench-pool.js [concurrency=8] [jobs=50000] [inFlight=256] [fn=echo]
 *   rm -rf .bench-dist
 */
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { DEFAULT_FUNCTIONS_DIR, FunctionPool } from '../../worker/executor/index.js'
import { silentLogger } from '../../runner/logger.js'

interface Round {
  perSecond: number
  p50: number
  p99: number
}

async function round(pool: FunctionPool, file: string, count: number, inFlight: number): Promise<Round> {
  const payload = { hello: 'world', n: 42, list: [1, 2, 3] }
  const latencies: number[] = []
  let next = 0
  const started = performance.now()
  async function lane(): Promise<void> {
    while (next < count) {
      const i = next++
      const t0 = performance.now()
      const out = await pool.run({ jobId: `job-${i}`, attempt: 1, functionFile: file, payload, timeoutMs: 60_000 })
        .promise
      if (!out.ok) throw new Error(`job failed: ${out.error.message}`)
      latencies.push(performance.now() - t0)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane))
  const seconds = (performance.now() - started) / 1000
  latencies.sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0
  return { perSecond: count / seconds, p50: pct(0.5), p99: pct(0.99) }
}

async function main(argv: string[]): Promise<void> {
  const concurrency = Number(argv[0] ?? 8)
  const jobs = Number(argv[1] ?? 50_000)
  const inFlight = Number(argv[2] ?? 256)
  const fn = argv[3] ?? 'echo'
  const file = join(DEFAULT_FUNCTIONS_DIR, `${fn}.mjs`)
  const pool = new FunctionPool({ concurrency, logger: silentLogger() })
  try {
    await pool.ready()
    await round(pool, file, Math.min(5000, jobs), inFlight) // warm-up: module imports, JIT
    const r = await round(pool, file, jobs, inFlight)
    console.log(
      `concurrency=${concurrency} inFlight=${inFlight} fn=${fn} jobs=${jobs}: ${Math.round(r.perSecond)} jobs/s, ` +
        `latency p50 ${r.p50.toFixed(2)} ms p99 ${r.p99.toFixed(2)} ms`,
    )
  } finally {
    await pool.close()
  }
}

// Only when run as a script (tap given the whole folder imports it and must not start a benchmark).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href)
  await main(process.argv.slice(2))
