/**
 * Fault: the boss's ZooKeeper session expires while every job slot runs a long job and 5,000 jobs wait
 * in its queue. The boss reaches ZooKeeper through a TCP proxy that stalls past the session timeout.
 * The new boss must adopt the running jobs, apply the held results and load the queue; the partition
 * heals only once the new boss has stored writes, so the old boss's return is judged against them
 * (epochs on the wire, at every change of epoch the run sees); the old boss comes back as a worker on
 * a new session without a process restart. No worker dies: every job starts once, attempts 1.
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
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { watchWire } from '../helpers/fault-observer.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import {
  checkBossChange,
  dispatchingAt,
  firstLog,
  inFlightWorkload,
  takeoverEvidence,
  waitForEndsWithin,
  waitLongsRunning,
} from '../helpers/in-flight.js'
import { executionLines, settleWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNNERS = 3
const CONCURRENCY = 4
const SLOTS = RUNNERS * CONCURRENCY
const QUEUED = 5000
/** From the stall until the new boss dispatches. */
const BOUND_MS = 6000
/** Stored writes of the new epoch before the partition heals. */
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
  const fault = `boss session expiry with every slot busy and ${QUEUED} queued`
  const bound = `boss demoted before its successor's election; new boss dispatching ≤ ${BOUND_MS} ms`
  t.test(`the boss's session expires with every slot busy and ${QUEUED} jobs queued (run ${run})`, (t) =>
    faultRun(t, { fault, run, bound }, async (check) => {
      const cluster = uniqueName('be')
      const proxy = await startTcpProxy(zk.connect)
      t.teardown(() => proxy.close())
      const c = new TestCluster({
        zk,
        nats,
        cluster,
        workers: RUNNERS,
        concurrency: CONCURRENCY,
        functionsDir,
        sessionTimeoutMs: SESSION_MS,
      })
      t.teardown(() => c.close())
      const first = c.addWorker({ ZK_CONNECT: proxy.address })
      await waitForLog(first, /I am the boss/, 0, 120_000)
      await startClusterPatiently(c, RUNNERS)
      const before = await c.clusterState()
      check.equal(before.boss?.pid, first.pid, 'the proxied worker is the boss')
      const oldEpoch = before.boss!.epoch
      const wire = await watchWire(nats.url, cluster)
      t.teardown(() => wire.stop())
      // Long jobs long enough for the queue to be submitted behind them before the fault.
      const w = inFlightWorkload(c, { longs: SLOTS, longMs: 10_000, queued: QUEUED, batchSize: 500 })
      await waitLongsRunning(w, SLOTS)
      await w.done
      check.equal(w.acknowledged.length, SLOTS + QUEUED, 'all jobs acknowledged before the fault')
      await waitForEndsWithin(w, SLOTS, 1200)
      const faultAt = Date.now() // before the fault, so no reaction to it can carry an earlier time
      proxy.stall()
      const lost = await waitForLog(first, /session lost/, faultAt, 30_000)
      const demoted = logEntries(first, /^deposed/, faultAt)[0]
      const after = await waitForNewBoss(c, before.boss!.id, 30_000)
      const newEpoch = after.boss.epoch
      const electedAt = Date.parse(after.boss.since)
      const dispatching = await dispatchingAt(c, faultAt)
      const loaded = await firstLog(c, /^job store loaded$/, faultAt, 60_000)
      await waitFor(
        () => wire.writes.filter((x) => (x.epoch ?? 0) > oldEpoch && x.storedSeq !== undefined).length >= NEW_WRITES,
        {
          timeoutMs: 30_000,
          what: 'the new boss storing writes',
        },
      )
      proxy.heal()
      const healedAt = Date.now()
      const rejoined = await waitFor(async () => (await c.clusterState()).workers.find((x) => x.pid === first.pid), {
        timeoutMs: 30_000,
        what: 'the old boss back as a worker',
      }).catch(() => undefined)
      const verdict = verifyWorkload(w, await settleWorkload(c, w, 180_000))
      const stoppedAt = demoted?.time ?? lost.time
      const evidence = takeoverEvidence(w, faultAt, stoppedAt, dispatching)
      const newSession = logEntries(first, /ZooKeeper connected/, lost.time)[0]
      const ranOnOld = executionLines(w.runsFile).filter((l) => l.pid === first.pid && l.at > healedAt).length

      check.ok(demoted, 'the old boss logged its demotion')
      check.ok(
        stoppedAt <= electedAt,
        `the old boss stopped (${stoppedAt}) before its successor was elected (${electedAt})`,
      )
      check.ok(newEpoch > oldEpoch, 'the new boss has a greater epoch')
      check.ok(
        Number(loaded.unfinished) >= QUEUED / 2,
        `the new boss took over a large queue (${String(loaded.unfinished)} unfinished)`,
      )
      checkWorkload(check, verdict, SLOTS + QUEUED)
      const fence = checkBossChange(check, wire, { oldEpoch, changed: true, evidence, needHeld: true })
      check.ok(first.running, 'the old boss process was not restarted')
      check.ok(newSession, 'the old boss opened a new ZooKeeper session')
      check.ok(rejoined, 'the old boss is listed as a worker again')
      check.atMost(dispatching - faultAt, BOUND_MS, 'the new boss dispatched within the bound after the stall')
      const [jobs, unfinished, tookMs] = [loaded.jobs, loaded.unfinished, loaded.tookMs].map(String)
      const load = `loaded ${jobs} jobs (${unfinished} unfinished) in ${tookMs} ms`
      const notes = [
        `old boss demoted ${stoppedAt - faultAt} ms, session lost ${lost.time - faultAt} ms after the stall`,
        `successor elected ${electedAt - faultAt} ms, dispatching ${dispatching - faultAt} ms, ${load}`,
        fence,
        `old boss: new session ${newSession ? newSession.time - healedAt : '?'} ms after the heal`,
        `it ran ${ranOnOld} jobs after it`,
      ].join('; ')
      return { verdict, measuredMs: dispatching - faultAt, notes }
    }),
  )
}
