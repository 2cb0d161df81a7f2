/**
 * Fault: a 3-member ZooKeeper ensemble loses two members mid-run (quorum gone) while long jobs run in
 * half the slots and short ones flow through the rest. Every process loses ZooKeeper; the boss stops
 * dispatching as soon as it notices (no job starts after that while the quorum is gone, though slots
 * are free and jobs wait); when one member returns the cluster resumes by itself, with a new term that
 * adopts the long jobs still running. Nothing acknowledged is lost and, since no bosun process dies,
 * nothing starts twice.
 */
import t from 'tap'
import { startNats, startZkEnsemble, uniqueName } from '../helpers/servers.js'
import {
  TestCluster,
  e2eFunctionsDir,
  logEntries,
  startClusterPatiently,
  type BosunProcess,
} from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { zkEnsembleWhole, zkLeaderMember } from '../helpers/server-probes.js'
import { watchWire } from '../helpers/fault-observer.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import {
  checkBossChange,
  inFlightWorkload,
  processOf,
  takeoverEvidence,
  waitLongsRunning,
} from '../helpers/in-flight.js'
import { executionLines, executionsBetween, settleWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNNERS = 3
const CONCURRENCY = 4
const LONGS = (RUNNERS * CONCURRENCY) / 2
const QUEUED = 2000
/** How long the quorum stays gone after every process noticed. */
const OUTAGE_MS = 3000
/** Dispatches already on the wire when the boss noticed may still start this long after. */
const IN_FLIGHT_MS = 500
/** From the member's return until a boss dispatches again. */
const BOUND_MS = 10_000
t.setTimeout(900_000)

const zk = await startZkEnsemble(3, { tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

/** Time (epoch ms) of the first log line at or after `since` saying ZooKeeper is in doubt or gone. */
function noticedAt(p: BosunProcess, since: number): number | undefined {
  return logEntries(p, /^(ZooKeeper connection in doubt|ZooKeeper suspended|ZooKeeper session lost|deposed)$/, since)[0]
    ?.time
}

for (let run = 1; run <= 3; run++) {
  const fault = 'ZooKeeper: kill -9 of 2 members of 3, one restarted'
  const bound =
    `boss noticed ≤ ${SESSION_MS} ms; no start during the outage; ` + `dispatching ≤ ${BOUND_MS} ms after the return`
  t.test(`kill -9 of two ZooKeeper members of three mid-run, then one returns (run ${run})`, (t) =>
    faultRun(t, { fault, run, bound }, async (check) => {
      const cluster = uniqueName('fzq')
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
      // Long enough to outlast the outage and the new term's start (the term may begin 10 s after the return).
      const w = inFlightWorkload(c, { longs: LONGS, longMs: 20_000, queued: QUEUED, shortMs: 3 })
      await waitLongsRunning(w, LONGS)
      await waitFor(() => executionLines(w.runsFile).length >= LONGS + QUEUED / 4, {
        timeoutMs: 60_000,
        what: 'a quarter of the short jobs started',
      })
      const before = await c.clusterState()
      const boss = processOf(c, before.boss!.pid)
      const leader = await waitFor(() => zkLeaderMember(zk), { timeoutMs: 30_000, what: 'a ZooKeeper leader' })
      const follower = zk.servers.find((s) => s !== leader)!
      const faultAt = Date.now()
      await Promise.all([leader.kill(), follower.kill()])
      t.teardown(async () => {
        for (const s of [leader, follower]) if (!s.running) await s.restart() // if the run fails half-way
      })

      // Every process notices; then the outage lasts OUTAGE_MS more.
      const procs = [c.api, ...c.workers]
      const noticed = await waitFor(
        () => {
          const times = procs.map((p) => noticedAt(p, faultAt))
          return times.every((x) => x !== undefined) ? times : undefined
        },
        { timeoutMs: 30_000, intervalMs: 100, what: 'every process noticed the quorum loss' },
      )
      const bossNoticed = noticedAt(boss, faultAt)!
      await waitFor(() => Date.now() >= Math.max(...noticed) + OUTAGE_MS, {
        timeoutMs: 60_000,
        what: 'the outage window',
      })
      const restoreAt = Date.now()
      const startedInOutage = executionsBetween(w.runsFile, bossNoticed + IN_FLIGHT_MS, restoreAt)
      await leader.restart() // one member back: quorum of 2

      const dispatching = await waitFor(
        () => c.workers.flatMap((p) => logEntries(p, /^boss term dispatching$/, restoreAt))[0],
        {
          timeoutMs: 60_000,
          what: 'a boss term dispatching after the return',
        },
      )
      const verdict = verifyWorkload(w, await settleWorkload(c, w, 120_000))
      const after = await c.waitReady(RUNNERS, 60_000)
      const evidence = takeoverEvidence(w, faultAt, bossNoticed, dispatching.time)
      await follower.restart() // back to 3 members for the next run, all of them synced
      await waitFor(() => zkEnsembleWhole(zk), { timeoutMs: 60_000, what: 'the ensemble whole again' })

      check.atMost(bossNoticed - faultAt, SESSION_MS, 'the boss noticed within the session timeout')
      check.equal(
        startedInOutage.length,
        0,
        `no job started from ${IN_FLIGHT_MS} ms after the boss noticed until a member returned`,
      )
      check.ok(
        executionLines(w.runsFile).some((l) => l.at > restoreAt),
        'jobs started after the quorum returned (the fault hit mid-run)',
      )
      checkWorkload(check, verdict, LONGS + QUEUED)
      check.ok(after.boss!.epoch > before.boss!.epoch, 'a new term leads after the outage (a greater epoch)')
      check.ok(
        c.workers.some((p) => p.pid === after.boss!.pid && p.running),
        'the boss after the outage is a live worker of this cluster',
      )
      const fence = checkBossChange(check, wire, {
        oldEpoch: before.boss!.epoch,
        changed: true,
        evidence,
      })
      check.ok(
        procs.every((p) => p.running),
        'no bosun process exited',
      )
      check.atMost(dispatching.time - restoreAt, BOUND_MS, 'a boss dispatched within the bound after a member returned')
      const notes = [
        `boss noticed after ${bossNoticed - faultAt} ms; quorum gone ${restoreAt - faultAt} ms`,
        `${startedInOutage.length} starts during the outage`,
        `dispatching ${dispatching.time - restoreAt} ms after the restart`,
        fence,
      ].join('; ')
      return { verdict, measuredMs: dispatching.time - restoreAt, notes }
    }),
  )
}
