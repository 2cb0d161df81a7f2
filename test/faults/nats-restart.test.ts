/**
 * Fault: kill -9 of the (single) nats-server mid-run, restarted on the same port and store dir.
 * Guarantee 2: nothing acknowledged is lost. No process dies, so nothing may run twice, and every
 * process reconnects by itself (same pids afterwards, the API ready again).
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { attributeDuplicates, executionGapAfter, executionLines, recordFault, settleWorkload, startClusterPatiently, startWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNS = 3
const JOBS = 2000

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

t.test('kill -9 and restart of the nats-server mid-run', async (t) => {
  const c = new TestCluster({ zk, nats, cluster: uniqueName('fnr'), workers: 3, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
  t.teardown(() => c.close())
  await startClusterPatiently(c, 2)
  const pids = [c.api, ...c.workers].map((p) => p.pid)

  for (let run = 1; run <= RUNS; run++) {
    await t.test(`run ${run}`, async (t) => {
      const before = await c.waitReady(2, 60_000)
      const w = startWorkload(c, { count: JOBS, jobMs: 3, fn: 'start' })
      await waitFor(() => executionLines(w.runsFile).length >= JOBS * 0.25, { timeoutMs: 60_000, what: 'a quarter of the jobs started' })
      const faultAt = Date.now()
      await nats.server.restart()
      const restartedAt = Date.now()
      const r = await settleWorkload(c, w, 120_000)
      const dup = attributeDuplicates(w.runsFile, new Set(), faultAt)
      const gap = executionGapAfter(w.runsFile, faultAt)
      recordFault({ fault: 'nats-server restart (kill -9 + restart, standalone)', run, ...r, failoverGapMs: gap, notes: `nats down ${restartedAt - faultAt} ms` })
      t.comment(`run ${run}: ${JSON.stringify(r)}; duplicates ${dup.duplicates}; longest execution gap ${gap} ms`)

      t.equal(r.acknowledged, JOBS, 'every submitted job was acknowledged (submitters retry 503s)')
      t.equal(r.lost, 0, 'no acknowledged job lost')
      t.equal(dup.duplicates, 0, 'no job started twice (no worker died)')
      t.ok(executionLines(w.runsFile).some((l) => l.at > restartedAt), 'jobs ran after the restart (the fault hit mid-run)')

      // Every process reconnected by itself: same pids, the API ready, the same workers listed.
      t.same([c.api, ...c.workers].map((p) => (p.running ? p.pid : -1)), pids, 'no process exited')
      const ready = await waitFor(async () => (await fetch(`${c.apiUrl}/readyz`).catch(() => undefined))?.status === 200, { timeoutMs: 30_000, what: 'readyz 200' })
      t.ok(ready, 'readyz answers 200 again')
      const after = await c.waitReady(2, 30_000)
      t.same(after.workers.map((x) => x.pid).sort(), before.workers.map((x) => x.pid).sort(), 'the same workers are registered')
      t.equal(after.boss?.pid, before.boss?.pid, 'the same boss process')
    })
  }
})
