/**
 * Fault: kill -9 of the boss while every job slot runs a job lasting several session timeouts, with
 * short jobs queued behind them (guarantees 2 and 3). No worker dies, so every job starts exactly once
 * and succeeds with attempts 1: the new boss adopts the jobs still running (inventory) and applies the
 * results workers held while no boss acted, instead of dispatching either again.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, startClusterPatiently, waitForNewBoss } from '../helpers/processes.js'
import { watchWire } from '../helpers/fault-observer.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import {
  checkBossChange,
  dispatchingAt,
  inFlightWorkload,
  processOf,
  takeoverEvidence,
  waitForEndsWithin,
  waitLongsRunning,
} from '../helpers/in-flight.js'
import { settleWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNNERS = 3
const CONCURRENCY = 4
const SLOTS = RUNNERS * CONCURRENCY
const QUEUED = 300
/** From the kill until the new boss dispatches: the session timeout, the election and the inventory. */
const BOUND_MS = 5000
t.setTimeout(900_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  t.test(`kill -9 of the boss while every slot runs a long job (run ${run})`, (t) =>
    faultRun(
      t,
      { fault: 'kill -9 of the boss', run, bound: `new boss dispatching ≤ ${BOUND_MS} ms after the kill` },
      async (check) => {
        const cluster = uniqueName('bk')
        const c = new TestCluster({
          zk,
          nats,
          cluster,
          workers: RUNNERS + 1,
          concurrency: CONCURRENCY,
          functionsDir,
          sessionTimeoutMs: SESSION_MS,
        })
        t.teardown(() => c.close())
        await startClusterPatiently(c, RUNNERS)
        const wire = await watchWire(nats.url, cluster)
        t.teardown(() => wire.stop())
        const w = inFlightWorkload(c, { longs: SLOTS, queued: QUEUED })
        await waitLongsRunning(w, SLOTS)
        await waitForEndsWithin(w, SLOTS, 1200)
        const before = await c.clusterState()
        const boss = processOf(c, before.boss!.pid)
        const faultAt = Date.now() // before the signal: the new boss is timed from the fault, not from reaping
        await boss.kill()
        const after = await waitForNewBoss(c, before.boss!.id, 30_000)
        const dispatching = await dispatchingAt(c, faultAt)
        const verdict = verifyWorkload(w, await settleWorkload(c, w, 120_000))
        const evidence = takeoverEvidence(w, faultAt, faultAt, dispatching)

        check.ok(after.boss.epoch > before.boss!.epoch, 'the new boss has a greater epoch')
        checkWorkload(check, verdict, SLOTS + QUEUED)
        const fence = checkBossChange(check, wire, {
          oldEpoch: before.boss!.epoch,
          changed: true,
          evidence,
          needHeld: true,
        })
        check.atMost(dispatching - faultAt, BOUND_MS, 'the new boss dispatched within the bound after the kill')
        return {
          verdict,
          measuredMs: dispatching - faultAt,
          notes: `new boss dispatching ${dispatching - faultAt} ms after the kill; ${fence}`,
        }
      },
    ),
  )
}
