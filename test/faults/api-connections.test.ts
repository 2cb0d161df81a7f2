/**
 * Fault: the API loses its NATS or its ZooKeeper connection mid-run (each through a TCP proxy that
 * is cut, then healed; workers stay connected). While cut, the API must refuse POST /jobs with 503 +
 * Retry-After (never a false 202: every 202 it gave is a job that exists and ends) and report
 * GET /readyz 503; after the heal it must recover by itself (202 again, readyz 200), no restart.
 */
import t from 'tap'
import { freePort, startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, spawnBosun } from '../helpers/processes.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { executionGapAfter, recordFault, settleWorkload, startWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const JOBS = 2000
/** How long a refusal may take while a connection is down (the API knows it is down). */
const REFUSAL_MS = 5000
/** How long the link stays cut: longer than the ZooKeeper session, so the API's session is lost. */
const CUT_MS = SESSION_MS + 2000
t.setTimeout(900_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

interface Probe {
  at: number
  ms: number
  status: number
  retryAfter: string | null
  id?: string
}

async function probe(c: TestCluster, file: string): Promise<Probe> {
  const at = Date.now()
  try {
    const res = await fetch(`${c.apiUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ function: 'count', payload: { file, n: -1 } }),
      signal: AbortSignal.timeout(REFUSAL_MS + 1000),
    })
    const body = (await res.json().catch(() => undefined)) as { id?: string } | undefined
    return { at, ms: Date.now() - at, status: res.status, retryAfter: res.headers.get('retry-after'), ...(res.status === 202 && body?.id ? { id: body.id } : {}) }
  } catch {
    return { at, ms: Date.now() - at, status: 0, retryAfter: null }
  }
}

async function readyStatus(c: TestCluster): Promise<number> {
  const r = await fetch(`${c.apiUrl}/readyz`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
  return r?.status ?? 0
}

interface Setup {
  c: TestCluster
  zkProxy: TcpProxy
  natsProxy: TcpProxy
}

/** One cluster per link, kept across the runs: the same API process must recover every time. */
async function setup(): Promise<Setup> {
  const zkProxy = await startTcpProxy(zk.connect)
  const natsProxy = await startTcpProxy(nats.url)
  const c = new TestCluster({ zk, nats, cluster: uniqueName('ac'), workers: 3, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
  t.teardown(async () => {
    await c.close()
    await zkProxy.close()
    await natsProxy.close()
  })
  for (let i = 0; i < 3; i++) c.addWorker()
  const port = await freePort()
  // Only the API goes through the proxies; the workers connect direct.
  c.api = spawnBosun('api', 'dist/api/main.js', { ...c.env(), ZK_CONNECT: zkProxy.address, NATS_URL: `nats://${natsProxy.address}`, PORT: String(port), HOST: '127.0.0.1', BOSUN_NODE_ID: `api-${port}` })
  c.apiUrl = `http://127.0.0.1:${port}`
  return { c, zkProxy, natsProxy }
}

for (const link of ['nats', 'zk'] as const) {
  let shared: Promise<Setup> | undefined
  for (let run = 1; run <= 3; run++) {
    t.test(`the API loses its ${link === 'nats' ? 'NATS' : 'ZooKeeper'} connection mid-run (run ${run})`, async (t) => {
      const { c, zkProxy, natsProxy } = await (shared ??= setup())
      const proxy: TcpProxy = link === 'nats' ? natsProxy : zkProxy
      await c.waitReady(2, 120_000)
      const w = startWorkload(c, { count: JOBS, jobMs: 3 })
      await waitFor(() => w.acknowledged.length >= JOBS / 5, { timeoutMs: 60_000, what: 'a fifth of the jobs acknowledged' })
      const cutAt = Date.now() // before the fault: the API may react within the same millisecond
      proxy.cut()
      await waitFor(async () => (await readyStatus(c)) === 503, { timeoutMs: 15_000, intervalMs: 50, what: 'readyz 503' })
      const notReadyMs = Date.now() - cutAt
      const probes: Probe[] = []
      do probes.push(await probe(c, w.runsFile))
      while (Date.now() - cutAt < CUT_MS)
      const readyWhileCut = await readyStatus(c)
      proxy.heal()
      const healedAt = Date.now()
      await waitFor(async () => (await readyStatus(c)) === 200, { timeoutMs: 30_000, intervalMs: 50, what: 'readyz 200 after the heal' })
      const readyMs = Date.now() - healedAt
      let healProbes = 0
      const accepted = await waitFor(async () => {
        healProbes++
        const p = await probe(c, w.runsFile)
        return p.status === 202 ? p : undefined
      }, { timeoutMs: 30_000, intervalMs: 100, what: 'a 202 after the heal' })
      const acceptMs = accepted.at + accepted.ms - healedAt
      await w.done
      const probed = probes.filter((p) => p.id !== undefined).map((p) => p.id!)
      // Every POST counts as submitted: the workload's, the refused probes and those after the heal.
      const tracked = { ...w, submitted: w.submitted + probes.length + healProbes, acknowledged: [...w.acknowledged, ...probed, accepted.id!] }
      const res = await settleWorkload(c, tracked, 90_000)
      const gap = executionGapAfter(w.runsFile, cutAt)
      const byStatus = new Map<number, number>()
      for (const p of probes) byStatus.set(p.status, (byStatus.get(p.status) ?? 0) + 1)
      const statuses = [...byStatus].map(([status, n]) => `${n}× ${status}`).join(', ')
      const slowest = Math.max(0, ...probes.map((p) => p.ms))
      const summary = `readyz 503 ${notReadyMs} ms after the cut; ${probes.length} POSTs while cut: ${statuses}, slowest ${slowest} ms; readyz 200 ${readyMs} ms and 202 ${acceptMs} ms after the heal`
      recordFault({ fault: `API loses ${link === 'nats' ? 'NATS' : 'ZooKeeper'}`, run, ...res, failoverGapMs: gap, notes: summary })
      t.comment(`run ${run}: ${JSON.stringify(res)}; ${summary}`)
      t.ok(c.api.running, 'the API process was not restarted')
      t.equal(readyWhileCut, 503, 'GET /readyz answers 503 while the link is cut')
      t.same(probes.filter((p) => p.status !== 503).map((p) => `${p.status} after ${p.ms} ms`), [], 'every POST /jobs while cut is refused with 503')
      t.same(probes.filter((p) => p.status === 503 && (p.retryAfter === null || !(Number(p.retryAfter) >= 0))).length, 0, 'every 503 carries Retry-After')
      t.same(probes.filter((p) => p.ms > REFUSAL_MS).map((p) => `${p.status} after ${p.ms} ms`), [], `every refusal comes within ${REFUSAL_MS} ms`)
      t.ok(readyMs <= 10_000, `readyz recovered by itself ${readyMs} ms after the heal`)
      t.equal(res.lost, 0, 'every 202 the API gave is a job that exists and succeeded')
      t.equal(res.ranTwice, 0, 'no job ran twice')
    })
  }
}
