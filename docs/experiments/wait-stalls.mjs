// EXPERIMENT (README "A consumer that goes silent"):
//   node docs/experiments/wait-stalls.mjs <checkout with dist/ built> [windows] [seconds]
// One bosun cluster as the compare bench starts it (API + 5 workers × 16, threads), then `windows`
// windows of `POST /jobs?wait=5000` of noop at an open-loop 200 jobs/s for `seconds` each (the compare
// bench's latency step): p50 / p99 / max per window, and how often the processes logged a stream
// consumer going silent. Run it for two checkouts alternately to compare them in one sitting.
import { readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
const root = process.argv[2]
const windows = Number(process.argv[3] ?? 6)
const seconds = Number(process.argv[4] ?? 10)
const logDirsBefore = new Set(readdirSync(tmpdir()).filter((d) => d.startsWith('bosun-logs-')))
const { startZooKeeper, startNats } = await import(`${root}/dist/test/helpers/servers.js`)
const { startBosun } = await import(`${root}/dist/bench/compare/bosun-side.js`)
const { latency } = await import(`${root}/dist/bench/compare/latency.js`)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const rows = []
try {
  const sys = await startBosun(zk, nats, { workers: 5, concurrency: 16, isolation: 'threads', sessionTimeoutMs: 2000 })
  try {
    await latency(sys, 200, 3, 1) // warm-up
    for (let i = 0; i < windows; i++) {
      const r = await latency(sys, 200, seconds, 0)
      rows.push({ p50: r.p50Ms, p99: r.p99Ms, max: r.maxMs, failures: r.failures })
      console.log(
        `window ${i + 1}: p50 ${r.p50Ms.toFixed(3)} ms, p99 ${r.p99Ms.toFixed(3)} ms, max ${r.maxMs.toFixed(1)} ms`,
      )
    }
  } finally {
    await sys.close()
  }
} finally {
  await nats.close()
  await zk.close()
}
let silent = 0
for (const d of readdirSync(tmpdir()).filter((d) => d.startsWith('bosun-logs-') && !logDirsBefore.has(d)))
  for (const f of readdirSync(join(tmpdir(), d)))
    silent += (readFileSync(join(tmpdir(), d, f), 'utf8').match(/stream consumer silent/g) ?? []).length
const sorted = (k) => rows.map((r) => r[k]).sort((a, b) => a - b)
const median = (k) => sorted(k)[Math.floor(rows.length / 2)]
console.log(
  JSON.stringify({
    root,
    windows,
    seconds,
    medianP50: median('p50'),
    medianP99: median('p99'),
    worstMax: Math.max(...sorted('max')),
    windowsWithP99Over100ms: rows.filter((r) => r.p99 > 100).length,
    silentLogged: silent,
    rows,
  }),
)
