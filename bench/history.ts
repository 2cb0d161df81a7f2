/**
 * History benchmark (guarantee 5): does a cluster that has run for a while fail over and answer as
 * fast as a new one? One cluster (API + N workers) filled in steps with finished `noop` jobs (1 in
 * 100 a `fail` job) through POST /jobs/batch — 0, then 100,000, then 1,000,000 retained by default —
 * and at each size, once the boss has closed every filled batch, on fresh processes started over
 * that store (so the boss's memory is what its takeover read, not what the fill ran through it):
 * the boss's resident memory, kill -9 and SIGTERM
 * failover (signal → first completion by the new boss, under a steady stream of jobs; median of
 * --runs each), and the latency of `GET /jobs?limit=100` and `GET /jobs?state=failed&limit=100`.
 */
import { readFileSync } from 'node:fs'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { startNats, startZooKeeper } from '../test/helpers/servers.js'
import { openCluster, type BenchCluster } from './e2e/cluster.js'
import { failover } from './e2e/failover.js'
import { machineInfo, progress, summarize, type Row } from './lib/report.js'
import type { BenchOutcome } from './runtime.js'

export interface HistoryBenchOptions {
  /** Retained finished jobs at each measuring point, ascending. @defaultValue [0, 100000, 1000000] */
  sizes?: number[]
  /** Failovers of each kind per size. @defaultValue 3 */
  runs?: number
  /** @defaultValue 5 */
  workers?: number
  /** @defaultValue 16 */
  concurrency?: number
  /** @defaultValue 2000 */
  sessionTimeoutMs?: number
  /** Listing requests per query per size. @defaultValue 200 */
  listings?: number
}

const BATCH = 1000
const IN_FLIGHT = 4
/** Longest wait for the boss to close the filled batches. */
const CLOSE_WAIT_MS = 300_000

async function bossRssMb(c: BenchCluster): Promise<number> {
  const pid = (await c.cluster.clusterState()).boss?.pid
  if (!pid) return Number.NaN
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  return kb / 1024
}

/**
 * Submit `count` jobs in batches, wait until `total` jobs were announced finished, then until
 * the boss has closed every batch (a cluster that has run for a day has its finished batches closed;
 * right after a fill at full speed the closes still lag the final records).
 */
async function fill(
  c: BenchCluster,
  count: number,
  total: number,
): Promise<{ ms: number; openAtLastFinal: number; closeLagMs: number }> {
  const t0 = Date.now()
  let sent = 0
  const one = async () => {
    while (sent < count) {
      const n = Math.min(BATCH, count - sent)
      sent += n
      const jobs = Array.from({ length: n }, (_, i) =>
        i % 100 === 99 ? { function: 'fail', payload: { message: 'history' } } : { function: 'noop' },
      )
      for (;;) {
        const r = await c.client.post('/jobs/batch', { jobs }, 60_000).catch(() => undefined)
        if (r?.status === 202) break
        await new Promise((res) => setTimeout(res, 200))
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, one))
  const nc = await connect({ servers: c.nats.url })
  try {
    const jsm = await jetstreamManager(nc)
    // The boss's finished notices count the finals (DONE holds groups of them: jobs/streams/final-groups.ts);
    // an empty SUBMIT (every batch closed) ends the wait too, should a notice have been missed.
    for (;;) {
      if (c.events.done.size >= total) break
      if ((await jsm.streams.info(`bosun_${c.name}_submit`)).state.messages === 0) break
      await new Promise((res) => setTimeout(res, 1000))
    }
    const ms = Date.now() - t0
    const openAtLastFinal = (await openBatches(c)).submit
    const closing = Date.now()
    while ((await openBatches(c)).submit > 0) {
      if (Date.now() - closing > CLOSE_WAIT_MS) throw new Error(`batches still open ${CLOSE_WAIT_MS} ms after the fill`)
      await new Promise((res) => setTimeout(res, 200))
    }
    return { ms, openAtLastFinal, closeLagMs: Date.now() - closing }
  } finally {
    await nc.close()
  }
}

/** Messages in the SUBMIT and STATE streams: the open batches a takeover reads (STATE also holds the checkpoint). */
async function openBatches(c: BenchCluster): Promise<{ submit: number; state: number }> {
  const nc = await connect({ servers: c.nats.url })
  try {
    const jsm = await jetstreamManager(nc)
    const count = async (s: string) => (await jsm.streams.info(`bosun_${c.name}_${s}`)).state.messages
    return { submit: await count('submit'), state: await count('state') }
  } finally {
    await nc.close()
  }
}

async function listLatency(c: BenchCluster, path: string, n: number): Promise<number[]> {
  const ms: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    const r = await c.client.get(path)
    if (r.status !== 200) throw new Error(`${path}: ${r.status}`)
    ms.push(performance.now() - t0)
  }
  return ms.sort((a, b) => a - b)
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN

export async function historyBench(o: HistoryBenchOptions = {}): Promise<BenchOutcome> {
  const sizes = o.sizes ?? [0, 100_000, 1_000_000]
  const runs = o.runs ?? 3
  const sessionTimeoutMs = o.sessionTimeoutMs ?? 2000
  const zk = await startZooKeeper({ tickTime: 100 })
  const nats = await startNats()
  const rows: Row[] = []
  const points: Record<string, unknown>[] = []
  let c: BenchCluster | undefined
  // The backlog is bounded during the fill (429 past it, retried): history, not a queue, is measured.
  const settings = {
    workers: o.workers ?? 5,
    concurrency: o.concurrency ?? 16,
    sessionTimeoutMs,
    env: { BOSUN_MAX_QUEUED_JOBS: '20000' },
  }
  try {
    c = await openCluster(zk, nats, settings, 'hist')
    let retained = 0
    for (const size of sizes) {
      let filled: Awaited<ReturnType<typeof fill>> | undefined
      if (size > retained) {
        progress(`filling to ${size} finished jobs`)
        filled = await fill(c, size - retained, size)
        progress(
          `filled ${size - retained} in ${Math.round(filled.ms / 1000)} s; ${filled.openAtLastFinal} batches ` +
            `still open at the last final record, all closed ${filled.closeLagMs} ms later`,
        )
        retained = size
      }
      // Fresh processes over the same store: the boss has read the store, nothing more.
      const name = c.name
      const open = await openBatches(c)
      await c.close()
      c = await openCluster(zk, nats, settings, 'hist', name)
      const rss = summarize(
        await Promise.all(
          [0, 1, 2].map(async (i) => (await new Promise((r) => setTimeout(r, i * 300)), bossRssMb(c!))),
        ),
      )
      const all = await listLatency(c, '/jobs?limit=100', o.listings ?? 200)
      const failed = await listLatency(c, '/jobs?state=failed&limit=100', Math.ceil((o.listings ?? 200) / 4))
      const kill: number[] = []
      const term: number[] = []
      for (let r = 0; r < runs; r++) {
        kill.push((await failover(c, 'SIGKILL', sessionTimeoutMs)).firstNewBossCompletionMs)
        term.push((await failover(c, 'SIGTERM', sessionTimeoutMs)).firstNewBossCompletionMs)
      }
      const rssAfter = await bossRssMb(c)
      const label = `${size.toLocaleString('en-US')} finished`
      rows.push(
        { name: `${label}: boss RSS`, unit: 'MB', summary: rss },
        {
          name: `${label}: kill -9 failover (signal → first completion by the new boss)`,
          unit: 'ms',
          summary: summarize(kill),
        },
        { name: `${label}: SIGTERM failover`, unit: 'ms', summary: summarize(term) },
        { name: `${label}: GET /jobs?limit=100 p50`, unit: 'ms', summary: summarize([pct(all, 50)]) },
        { name: `${label}: GET /jobs?limit=100 p99`, unit: 'ms', summary: summarize([pct(all, 99)]) },
        { name: `${label}: GET /jobs?state=failed&limit=100 p50`, unit: 'ms', summary: summarize([pct(failed, 50)]) },
      )
      points.push({
        size,
        rssMb: rss,
        rssAfterFailoversMb: rssAfter,
        openBatchesAtTakeover: open,
        ...(filled ? { fill: filled } : {}),
        killMs: kill,
        termMs: term,
        listP50: pct(all, 50),
        listP99: pct(all, 99),
        failedP50: pct(failed, 50),
      })
      progress(
        `${label}: rss ${rss.median.toFixed(0)} MB, kill ${summarize(kill).median} ms, ` +
          `term ${summarize(term).median} ms, list p50 ${pct(all, 50).toFixed(1)} ms; ` +
          `open batches at the takeover: ${open.submit} submit / ${open.state} state messages; ` +
          `rss after the failovers ${rssAfter.toFixed(0)} MB`,
      )
    }
  } finally {
    await c?.close()
    await nats.close()
    await zk.close()
  }
  return { rows, data: { machine: machineInfo(), sizes, runs, points } }
}
