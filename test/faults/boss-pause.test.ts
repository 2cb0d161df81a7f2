/**
 * Fault: SIGSTOP of the boss past its ZooKeeper session timeout, then SIGCONT, during a 2,000-job run
 * (CONTRACT guarantee 1). While frozen the boss cannot notice anything; a new boss is elected. When
 * it wakes, it must not dispatch or write: proven from epochs on the wire (every job-record write
 * with JetStream's answer, every epoch-carrying message with the worker's answer), not from timing.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import {
  executionGapAfter,
  executions,
  logEntries,
  recordFault,
  settleWorkload,
  startCluster,
  startWorkload,
  waitForLog,
  waitForNewBoss,
  watchBossActions,
} from '../helpers/workload.js'

const SESSION_MS = 2000
const JOBS = 2000
t.setTimeout(900_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  t.test(`SIGSTOP of the boss past its session timeout, then SIGCONT (run ${run})`, async (t) => {
    const cluster = uniqueName('bp')
    const c = new TestCluster({ zk, nats, cluster, workers: 4, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
    t.teardown(() => c.close())
    await startCluster(c)
    const actions = await watchBossActions(nats.url, cluster)
    t.teardown(() => actions.stop())
    const w = startWorkload(c, { count: JOBS, jobMs: 3 })
    await waitFor(() => executions(w.runsFile).size >= JOBS / 5, { timeoutMs: 60_000, what: 'a fifth of the jobs ran' })
    // The boss as of now (not as of the start: on a loaded machine leadership may have moved).
    const before = await c.clusterState()
    const oldEpoch = before.boss!.epoch
    const boss = await c.bossProcess()
    const pausedAt = Date.now()
    boss.pause()
    let after
    try {
      after = await waitForNewBoss(c, before.boss!.id, 30_000)
      const newEpoch = after.boss.epoch
      // Wake the old boss only once the new one is visibly at work, so a late write of the old one
      // would land after the new boss's writes.
      await waitFor(() => actions.writes.filter((x) => x.epoch === newEpoch && x.storedSeq !== undefined).length >= 20, { timeoutMs: 30_000, what: 'the new boss writing' })
    } finally {
      boss.resume()
    }
    const resumedAt = Date.now()
    const newEpoch = after.boss.epoch
    const deposed = await waitForLog(boss, /deposed|fenced/, pausedAt, 20_000).catch(() => undefined)
    const res = await settleWorkload(c, w, 90_000)
    const gap = executionGapAfter(w.runsFile, pausedAt)
    const overlap = actions.overlap(oldEpoch, newEpoch)
    const staleRefusals = c.workers.reduce((n, p) => n + logEntries(p, /refused a dispatch from a stale boss/, pausedAt).length, 0)
    const summary = `${actions.summary(overlap)}; stale dispatches refused by workers (log): ${staleRefusals}; old boss logged "${deposed?.msg}" ${deposed ? deposed.time - resumedAt : '?'} ms after SIGCONT; paused ${resumedAt - pausedAt} ms`
    recordFault({ fault: 'SIGSTOP of the boss past its session timeout', run, ...res, failoverGapMs: gap, notes: summary })
    t.comment(`run ${run}: ${JSON.stringify(res)} gap ${gap} ms; ${summary}`)
    for (const x of overlap.lateOldWrites.slice(0, 5)) t.comment(`late write of the old boss: ${JSON.stringify(x)}`)
    for (const x of overlap.lateOldDispatches.slice(0, 5)) t.comment(`late dispatch of the old boss: ${JSON.stringify(x)}`)
    t.ok(newEpoch > oldEpoch, 'the new boss has a greater epoch')
    t.ok(overlap.newWrites > 0, 'the new boss wrote job records')
    t.same(overlap.lateOldWrites.map((x) => `${x.id} ${x.state} seq ${x.storedSeq}`), [], 'no write of the old epoch stored after the first write of the new epoch')
    t.same(overlap.lateOldDispatches.map((x) => `${x.to} ${x.jobs} jobs`), [], 'no dispatch of the old epoch accepted after the new boss began')
    t.ok(deposed, 'the old boss logged that it was deposed or fenced')
    t.ok(boss.running, 'the old boss process is still running (it rejoins as a candidate)')
    t.equal(res.acknowledged, JOBS, 'every job was acknowledged')
    t.equal(res.lost, 0, 'no acknowledged job lost')
    t.equal(res.ranTwice, 0, 'no job ran twice (no worker died)')
  })
}
