/**
 * Fault: a 3-server NATS cluster (every process given all three URLs, job store with 3 replicas)
 * loses the server leading the job store's stream mid-run, while long jobs run in half the slots and
 * short ones flow through the rest. Guarantee 2: nothing acknowledged is lost; no bosun process dies,
 * so nothing starts twice and every process carries on by itself.
 */
import t from 'tap'
import { startNatsCluster, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, startClusterPatiently } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { natsStreamCurrent, natsStreamLeader } from '../helpers/server-probes.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import { inFlightWorkload, waitLongsRunning } from '../helpers/in-flight.js'
import { executionGapAfter, executionLines, settleWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNNERS = 3
const CONCURRENCY = 4
const LONGS = (RUNNERS * CONCURRENCY) / 2
const QUEUED = 1000
/** Longest pause in job starts after the kill: JetStream elects a new stream leader (6–23 s seen here). */
const BOUND_MS = 40_000
t.setTimeout(900_000)

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNatsCluster(3)
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  const fault = 'NATS cluster of 3 (R3 job store): kill -9 of the stream leader'
  t.test(`kill -9 of the NATS server leading the job store stream mid-run (run ${run})`, (t) =>
    faultRun(t, { fault, run, bound: `job starts pause ≤ ${BOUND_MS} ms` }, async (check) => {
      const cluster = uniqueName('fnc')
      const env = { JOB_STORE_REPLICAS: '3' }
      const c = new TestCluster({
        zk,
        nats,
        cluster,
        workers: RUNNERS + 1,
        concurrency: CONCURRENCY,
        functionsDir,
        sessionTimeoutMs: SESSION_MS,
        env,
      })
      t.teardown(() => c.close())
      await startClusterPatiently(c, RUNNERS)
      const stream = `bosun_${cluster}_submit`
      check.ok(
        await waitFor(() => natsStreamCurrent(nats, stream), {
          timeoutMs: 60_000,
          what: 'the job store stream replicated and current',
        }),
        'the job store stream has replicas, all current',
      )
      const before = await c.clusterState()
      const pids = [c.api, ...c.workers].map((p) => p.pid)
      const w = inFlightWorkload(c, { longs: LONGS, queued: QUEUED, shortMs: 3 })
      await waitLongsRunning(w, LONGS)
      await waitFor(() => executionLines(w.runsFile).length >= LONGS + QUEUED / 4, {
        timeoutMs: 60_000,
        what: 'a quarter of the short jobs started',
      })
      const victim = await waitFor(() => natsStreamLeader(nats, stream), {
        timeoutMs: 30_000,
        what: `leader of ${stream}`,
      })
      const faultAt = Date.now()
      await victim.kill()
      t.teardown(() => (victim.running ? undefined : victim.restart())) // if the run fails half-way

      const verdict = verifyWorkload(w, await settleWorkload(c, w, 120_000))
      const gap = executionGapAfter(w.runsFile, faultAt)
      // The survivors name one of themselves as leader (a stream still led by the dead server, or by
      // none, yields undefined: the probe only knows running servers).
      const newLeader = await waitFor(() => natsStreamLeader(nats, stream), {
        timeoutMs: 30_000,
        what: 'a surviving stream leader',
      }).catch(() => undefined)
      const after = await c.waitReady(RUNNERS, 60_000)

      checkWorkload(check, verdict, LONGS + QUEUED)
      check.ok(
        executionLines(w.runsFile).some((l) => l.at > faultAt),
        'jobs started after the kill (it hit mid-run)',
      )
      check.ok(newLeader?.running, 'a surviving server leads the stream')
      check.same(
        [c.api, ...c.workers].map((p) => (p.running ? p.pid : -1)),
        pids,
        'no bosun process exited',
      )
      check.equal(after.boss?.pid, before.boss?.pid, 'the same boss process')
      check.atMost(gap, BOUND_MS, 'job starts resumed within the bound after the kill')

      await victim.restart() // back to 3 servers for the next run
      await waitFor(() => natsStreamCurrent(nats, stream), {
        timeoutMs: 60_000,
        what: 'every stream replica current again',
      })
      const notes = `killed server :${victim.port}; new leader :${newLeader?.port}; longest pause in starts ${gap} ms`
      return { verdict, measuredMs: gap, notes }
    }),
  )
}
