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
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import { executionGapAfter, settleWorkload, startWorkload, verifyWorkload, type Workload } from '../helpers/workload.js'

const SESSION_MS = 2000
const JOBS = 1000
/**
 * How long a refusal may take while a connection is down: the API knows it is down and answers at once —
 * under the shortest wait a refusal could otherwise come from (API_NO_BOSS_WAIT_MS, 2 s; the store deadline, 5 s).
 */
const REFUSAL_MS = 1000
/** How long the link stays cut: longer than the ZooKeeper session, so the API's session is lost. */
const CUT_MS = SESSION_MS + 2000
/** readyz answers 200 again this soon after the heal. */
const READY_MS = 10_000
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
  n: number
}

/** POST /jobs of one job with submission index `n` (it joins the workload's files). */
async function probe(c: TestCluster, w: Workload, n: number): Promise<Probe> {
  const at = Date.now()
  try {
    const res = await fetch(`${c.apiUrl}/jobs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ function: 'start', payload: { file: w.runsFile, ends: w.endsFile, n, ms: 0 } }),
      signal: AbortSignal.timeout(REFUSAL_MS + 5000),
    })
    const body = (await res.json().catch(() => undefined)) as { id?: string } | undefined
    const id = res.status === 202 && body?.id ? body.id : undefined
    return {
      at,
      ms: Date.now() - at,
      status: res.status,
      retryAfter: res.headers.get('retry-after'),
      n,
      ...(id ? { id } : {}),
    }
  } catch {
    return { at, ms: Date.now() - at, status: 0, retryAfter: null, n }
  }
}

async function readyStatus(c: TestCluster): Promise<number> {
  const r = await fetch(`${c.apiUrl}/readyz`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined)
  return r?.status ?? 0
}

for (const link of ['nats', 'zk'] as const) {
  const name = link === 'nats' ? 'NATS' : 'ZooKeeper'
  for (let run = 1; run <= 3; run++) {
    const bound = `every submit refused with 503 in ≤ ${REFUSAL_MS} ms while cut; ready ≤ ${READY_MS} ms after the heal`
    t.test(`the API loses its ${name} connection mid-run (run ${run})`, (t) =>
      faultRun(t, { fault: `API loses ${name}`, run, bound }, async (check) => {
        // A fresh cluster; only the API goes through the proxies, the workers connect direct.
        const zkProxy = await startTcpProxy(zk.connect)
        const natsProxy = await startTcpProxy(nats.url)
        const c = new TestCluster({
          zk,
          nats,
          cluster: uniqueName('ac'),
          workers: 3,
          concurrency: 8,
          functionsDir,
          sessionTimeoutMs: SESSION_MS,
        })
        t.teardown(async () => {
          await c.close()
          await zkProxy.close()
          await natsProxy.close()
        })
        for (let i = 0; i < 3; i++) c.addWorker()
        const port = await freePort()
        const env = { ...c.env(), ZK_CONNECT: zkProxy.address, NATS_URL: `nats://${natsProxy.address}` }
        c.api = spawnBosun('api', 'dist/api/main.js', {
          ...env,
          PORT: String(port),
          HOST: '127.0.0.1',
          BOSUN_NODE_ID: `api-${port}`,
        })
        c.apiUrl = `http://127.0.0.1:${port}`
        const proxy: TcpProxy = link === 'nats' ? natsProxy : zkProxy
        await c.waitReady(2, 120_000)
        const w = startWorkload(c, { count: JOBS, jobMs: 3 })
        await waitFor(() => w.acknowledged.length >= JOBS / 5, {
          timeoutMs: 60_000,
          what: 'a fifth of the jobs acknowledged',
        })
        const cutAt = Date.now() // before the fault: the API may react within the same millisecond
        proxy.cut()
        await waitFor(async () => (await readyStatus(c)) === 503, {
          timeoutMs: 15_000,
          intervalMs: 50,
          what: 'readyz 503',
        })
        const notReadyMs = Date.now() - cutAt
        const probes: Probe[] = []
        let next = JOBS // probes get submission indexes after the workload's
        do probes.push(await probe(c, w, next++))
        while (Date.now() - cutAt < CUT_MS)
        const readyWhileCut = await readyStatus(c)
        proxy.heal()
        const healedAt = Date.now()
        await waitFor(async () => (await readyStatus(c)) === 200, {
          timeoutMs: 30_000,
          intervalMs: 50,
          what: 'readyz 200 after the heal',
        }).catch(() => undefined)
        const readyMs = Date.now() - healedAt
        const healProbes: Probe[] = []
        const accepted = await waitFor(
          async () => {
            const p = await probe(c, w, next++)
            healProbes.push(p)
            return p.status === 202 ? p : undefined
          },
          { timeoutMs: 30_000, intervalMs: 100, what: 'a 202 after the heal' },
        )
        await w.done
        // Every POST counts as submitted; every 202 (the workload's, a probe's) must end succeeded.
        for (const p of [...probes, ...healProbes]) {
          w.submitted++
          if (p.id) {
            w.ids[p.n] = p.id
            w.acknowledged.push(p.id)
          }
        }
        const verdict = verifyWorkload(w, await settleWorkload(c, w, 90_000))
        const gap = executionGapAfter(w.runsFile, cutAt)
        const byStatus = new Map<number, number>()
        for (const p of probes) byStatus.set(p.status, (byStatus.get(p.status) ?? 0) + 1)
        const statuses = [...byStatus].map(([status, n]) => `${n}× ${status}`).join(', ')
        const slowest = Math.max(0, ...probes.map((p) => p.ms))

        check.ok(c.api.running, 'the API process was not restarted')
        check.equal(readyWhileCut, 503, 'GET /readyz answers 503 while the link is cut')
        check.same(
          probes.filter((p) => p.status !== 503).map((p) => `${p.status} after ${p.ms} ms`),
          [],
          'every POST /jobs while cut is refused with 503',
        )
        check.equal(
          probes.filter((p) => p.status === 503 && !(Number(p.retryAfter) >= 0)).length,
          0,
          'every 503 carries Retry-After',
        )
        check.atMost(slowest, REFUSAL_MS, 'every refusal came within the bound')
        check.atMost(readyMs, READY_MS, 'readyz recovered by itself after the heal')
        check.ok(accepted.id, 'the API accepted jobs again after the heal, without a restart')
        checkWorkload(check, verdict, JOBS + 1)
        const notes = [
          `readyz 503 ${notReadyMs} ms after the cut`,
          `${probes.length} POSTs while cut: ${statuses}, slowest ${slowest} ms`,
          `readyz 200 ${readyMs} ms and 202 ${accepted.at + accepted.ms - healedAt} ms after the heal`,
          `longest pause in starts ${gap} ms`,
        ].join('; ')
        return { verdict, measuredMs: slowest, notes }
      }),
    )
  }
}
