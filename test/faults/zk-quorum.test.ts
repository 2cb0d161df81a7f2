/**
 * Fault: a 3-member ZooKeeper ensemble loses two members mid-run (quorum gone). Every process loses
 * ZooKeeper; the boss stops dispatching as soon as it notices (no job starts after that while the
 * quorum is gone); when one member returns the cluster resumes by itself. Nothing acknowledged is
 * lost and, since no bosun process dies, nothing runs twice.
 */
import t, { type Test } from 'tap'
import { startNats, startZkEnsemble, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, type BosunProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import {
  attributeDuplicates,
  executionGapAfter,
  executionLines,
  executionsBetween,
  recordFault,
  settleWorkload,
  startClusterPatiently,
  startWorkload,
  zkLeaderMember,
} from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNS = 3
const JOBS = 2000
/** How long the quorum stays gone after every process noticed. */
const OUTAGE_MS = 3000
/** Dispatches already on the wire when the boss noticed may still start this long after. */
const IN_FLIGHT_MS = 500

const zk = await startZkEnsemble(3, { tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

/** Time (epoch ms) of the first log line at or after `since` saying ZooKeeper is in doubt or gone. */
function noticedAt(p: BosunProcess, since: number): number | undefined {
  for (const l of p.logLines()) {
    const time = typeof l.time === 'number' ? l.time : 0
    if (time < since) continue
    if (l.msg === 'ZooKeeper connection in doubt' || l.msg === 'ZooKeeper suspended' || l.msg === 'ZooKeeper session lost' || l.msg === 'deposed') return time
  }
  return undefined
}

async function quorumRun(t: Test, c: TestCluster, run: number): Promise<void> {
  await c.waitReady(2, 60_000)
  const boss = await c.bossProcess()
  const w = startWorkload(c, { count: JOBS, jobMs: 3, fn: 'start' })
  await waitFor(() => executionLines(w.runsFile).length >= JOBS * 0.25, { timeoutMs: 60_000, what: 'a quarter of the jobs started' })
  const leader = await waitFor(() => zkLeaderMember(zk), { timeoutMs: 30_000, what: 'a ZooKeeper leader' })
  const follower = zk.servers.find((s) => s !== leader)!
  const faultAt = Date.now()
  await Promise.all([leader.kill(), follower.kill()])

  // Every process notices; then the outage lasts OUTAGE_MS more.
  const procs = [c.api, ...c.workers]
  const noticed = await waitFor(() => {
    const times = procs.map((p) => noticedAt(p, faultAt))
    return times.every((x) => x !== undefined) ? (times as number[]) : undefined
  }, { timeoutMs: 30_000, intervalMs: 100, what: 'every process noticed the quorum loss' })
  const bossNoticed = noticedAt(boss, faultAt)!
  await waitFor(() => Date.now() >= Math.max(...noticed) + OUTAGE_MS, { timeoutMs: 60_000, what: 'the outage window' })
  const restoreAt = Date.now()
  const startedInOutage = executionsBetween(w.runsFile, bossNoticed + IN_FLIGHT_MS, restoreAt)
  await leader.restart() // one member back: quorum of 2

  const r = await settleWorkload(c, w, 120_000)
  const dup = attributeDuplicates(w.runsFile, new Set(), faultAt)
  const gap = executionGapAfter(w.runsFile, restoreAt)
  const after = await c.waitReady(2, 60_000)
  const fault = 'ZooKeeper: kill -9 of 2 members of 3, one restarted'
  recordFault({ fault, run, ...r, failoverGapMs: gap, notes: `boss noticed after ${bossNoticed - faultAt} ms; quorum gone ${restoreAt - faultAt} ms; ${startedInOutage.length} starts during the outage; gap measured from the restart` })
  t.comment(`run ${run}: ${JSON.stringify(r)}; duplicates ${dup.duplicates}; boss noticed after ${bossNoticed - faultAt} ms; starts in outage ${startedInOutage.length}; gap after restore ${gap} ms`)

  t.ok(bossNoticed - faultAt <= SESSION_MS, `the boss noticed within the session timeout (${bossNoticed - faultAt} ms)`)
  t.equal(startedInOutage.length, 0, `no job started from ${IN_FLIGHT_MS} ms after the boss noticed until a member returned`)
  t.equal(r.acknowledged, JOBS, 'every job was acknowledged')
  t.equal(r.lost, 0, 'no acknowledged job lost')
  t.equal(dup.duplicates, 0, 'no job started twice (no worker died)')
  t.ok(executionLines(w.runsFile).some((l) => l.at > restoreAt), 'jobs ran after the quorum returned (the fault hit mid-run)')
  t.ok(after.boss !== null, 'a boss leads again')
  t.ok(procs.every((p) => p.running), 'no bosun process exited')

  await follower.restart() // back to 3 members for the next run
}

t.test('kill -9 of two ZooKeeper members of three mid-run, then one returns', async (t) => {
  const c = new TestCluster({ zk, nats, cluster: uniqueName('fzq'), workers: 3, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
  t.teardown(() => c.close())
  await startClusterPatiently(c, 2)
  for (let run = 1; run <= RUNS; run++) await t.test(`run ${run}`, (t) => quorumRun(t, c, run))
})
