/**
 * Fault: SIGSTOP of the boss past its ZooKeeper session timeout while every job slot runs a long job,
 * then SIGCONT once its successor is visibly at work (guarantee 1). While frozen the boss notices
 * nothing; when it wakes, whatever it still sends is judged on the wire — every job-record write with
 * JetStream's answer, every epoch-carrying message with the worker's answer — at every change of
 * epoch, not by timing. No worker dies: every job starts once and succeeds with attempts 1.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import {
  TestCluster,
  e2eFunctionsDir,
  logEntries,
  startClusterPatiently,
  waitForLog,
  waitForNewBoss,
} from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
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
/** From SIGSTOP until the new boss dispatches. */
const BOUND_MS = 5000
/** Stored writes of the new epoch before the old boss is woken. */
const NEW_WRITES = 10
t.setTimeout(900_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  const bound = `new boss dispatching ≤ ${BOUND_MS} ms after SIGSTOP`
  t.test(`SIGSTOP of the boss past its session timeout, then SIGCONT (run ${run})`, (t) =>
    faultRun(t, { fault: 'SIGSTOP of the boss past its session timeout', run, bound }, async (check) => {
      const cluster = uniqueName('bp')
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
      // The boss as of now (on a loaded machine leadership may have moved since the start).
      const before = await c.clusterState()
      const oldEpoch = before.boss!.epoch
      const boss = processOf(c, before.boss!.pid)
      t.teardown(() => boss.resume())
      const pausedAt = Date.now()
      boss.pause()
      let after
      try {
        after = await waitForNewBoss(c, before.boss!.id, 30_000)
        // Wake the old boss only once the new one has stored writes, so a late write of the old one
        // meets records its successor already holds.
        await waitFor(
          () => wire.writes.filter((x) => (x.epoch ?? 0) > oldEpoch && x.storedSeq !== undefined).length >= NEW_WRITES,
          {
            timeoutMs: 30_000,
            what: 'the new boss storing writes',
          },
        )
      } finally {
        boss.resume()
      }
      const resumedAt = Date.now()
      const newEpoch = after.boss.epoch
      const dispatching = await dispatchingAt(c, pausedAt)
      const deposed = await waitForLog(boss, /^deposed|fenced/, pausedAt, 20_000).catch(() => undefined)
      const verdict = verifyWorkload(w, await settleWorkload(c, w, 120_000))
      const evidence = takeoverEvidence(w, pausedAt, pausedAt, dispatching)
      const staleRefusals = c.workers.reduce(
        (n, p) => n + logEntries(p, /refused a dispatch from a stale boss/, pausedAt).length,
        0,
      )

      check.ok(newEpoch > oldEpoch, 'the new boss has a greater epoch')
      checkWorkload(check, verdict, SLOTS + QUEUED)
      const fence = checkBossChange(check, wire, { oldEpoch, changed: true, evidence, needHeld: true })
      check.ok(deposed, 'the old boss logged that it was deposed or fenced after SIGCONT')
      check.ok(boss.running, 'the old boss process is still running (it rejoins as a candidate)')
      check.atMost(dispatching - pausedAt, BOUND_MS, 'the new boss dispatched within the bound after SIGSTOP')
      const notes = [
        `new boss dispatching ${dispatching - pausedAt} ms after SIGSTOP`,
        fence,
        `paused ${resumedAt - pausedAt} ms`,
        `old boss logged "${deposed?.msg}" ${deposed ? deposed.time - resumedAt : '?'} ms after SIGCONT`,
        `stale dispatches refused by workers (log) ${staleRefusals}`,
      ].join('; ')
      return { verdict, measuredMs: dispatching - pausedAt, notes }
    }),
  )
}
