/**
 * Fault: kill -9 of the (single) nats-server mid-run, restarted on the same port and store dir, while
 * long jobs run in half the slots (their results wait in the workers across the outage) and short ones
 * flow through the rest. Guarantee 2: nothing acknowledged is lost. No process dies, so nothing starts
 * twice, and every process reconnects by itself (same pids afterwards, the API ready again).
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, startClusterPatiently } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import { inFlightWorkload, waitLongsRunning } from '../helpers/in-flight.js'
import { executionGapAfter, executionLines, settleWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNNERS = 3
const CONCURRENCY = 4
const LONGS = (RUNNERS * CONCURRENCY) / 2
const QUEUED = 1000
/** Longest pause in job starts after the kill (JetStream needs a few seconds after a restart). */
const BOUND_MS = 15_000
t.setTimeout(900_000)

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  const fault = 'nats-server restart (kill -9 + restart, standalone)'
  t.test(`kill -9 and restart of the nats-server mid-run (run ${run})`, (t) =>
    faultRun(t, { fault, run, bound: `job starts pause ≤ ${BOUND_MS} ms` }, async (check) => {
      const c = new TestCluster({
        zk,
        nats,
        cluster: uniqueName('fnr'),
        workers: RUNNERS + 1,
        concurrency: CONCURRENCY,
        functionsDir,
        sessionTimeoutMs: SESSION_MS,
      })
      t.teardown(() => c.close())
      await startClusterPatiently(c, RUNNERS)
      const before = await c.clusterState()
      const pids = [c.api, ...c.workers].map((p) => p.pid)
      const w = inFlightWorkload(c, { longs: LONGS, queued: QUEUED, shortMs: 3 })
      await waitLongsRunning(w, LONGS)
      await waitFor(() => executionLines(w.runsFile).length >= LONGS + QUEUED / 4, {
        timeoutMs: 60_000,
        what: 'a quarter of the short jobs started',
      })
      const faultAt = Date.now()
      await nats.server.restart()
      const restartedAt = Date.now()
      const verdict = verifyWorkload(w, await settleWorkload(c, w, 120_000))
      const gap = executionGapAfter(w.runsFile, faultAt)
      const ready = await waitFor(
        async () => (await fetch(`${c.apiUrl}/readyz`).catch(() => undefined))?.status === 200,
        { timeoutMs: 30_000, what: 'readyz 200' },
      ).catch(() => false)
      const after = await c.waitReady(RUNNERS, 30_000)

      checkWorkload(check, verdict, LONGS + QUEUED)
      check.ok(
        executionLines(w.runsFile).some((l) => l.at > restartedAt),
        'jobs started after the restart (the fault hit mid-run)',
      )
      check.same(
        [c.api, ...c.workers].map((p) => (p.running ? p.pid : -1)),
        pids,
        'no process exited',
      )
      check.ok(ready, 'readyz answers 200 again')
      check.same(
        after.workers.map((x) => x.pid).sort(),
        before.workers.map((x) => x.pid).sort(),
        'the same workers are registered',
      )
      check.equal(after.boss?.pid, before.boss?.pid, 'the same boss process')
      check.atMost(gap, BOUND_MS, 'job starts resumed within the bound after the kill')
      return {
        verdict,
        measuredMs: gap,
        notes:
          `nats down ${restartedAt - faultAt} ms; longest pause in starts ${gap} ms; ` +
          `epoch ${before.boss?.epoch} → ${after.boss?.epoch}`,
      }
    }),
  )
}
