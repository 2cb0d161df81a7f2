/**
 * Fault: kill -9 of the boss during a 2,000-job run (CONTRACT guarantees 2 and 3). No worker dies,
 * so every acknowledged job must succeed exactly once; the new boss adopts what was in flight.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { executionGapAfter, executions, recordFault, settleWorkload, startCluster, startWorkload, watchBossActions } from '../helpers/workload.js'

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
  t.test(`kill -9 of the boss during ${JOBS} jobs (run ${run})`, async (t) => {
    const cluster = uniqueName('bk')
    const c = new TestCluster({ zk, nats, cluster, workers: 4, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
    t.teardown(() => c.close())
    await startCluster(c)
    const actions = await watchBossActions(nats.url, cluster)
    t.teardown(() => actions.stop())
    const w = startWorkload(c, { count: JOBS, jobMs: 3 })
    await waitFor(() => executions(w.runsFile).size >= JOBS / 5, { timeoutMs: 60_000, what: 'a fifth of the jobs ran' })
    const before = await c.clusterState()
    const boss = await c.bossProcess()
    const killedAt = Date.now() // before the signal: the gap is measured from the fault, not from reaping
    await boss.kill()
    const after = await waitFor(async () => {
      const s = await c.clusterState()
      return s.boss && s.boss.id !== before.boss!.id ? s : undefined
    }, { timeoutMs: 20_000, what: 'a new boss' })
    const res = await settleWorkload(c, w, 90_000)
    const gap = executionGapAfter(w.runsFile, killedAt)
    const overlap = actions.overlap(before.boss!.epoch, after.boss!.epoch)
    recordFault({ fault: 'kill -9 of the boss', run, ...res, failoverGapMs: gap, notes: `epoch ${before.boss!.epoch}→${after.boss!.epoch}; new boss after ${Date.parse(after.boss!.since) - killedAt} ms` })
    t.comment(`run ${run}: ${JSON.stringify(res)} gap ${gap} ms; ${actions.summary(overlap)}`)
    t.ok(after.boss!.epoch > before.boss!.epoch, 'the new boss has a greater epoch')
    t.equal(res.acknowledged, JOBS, 'every job was acknowledged (503 during the election is retried)')
    t.equal(res.lost, 0, 'no acknowledged job lost')
    t.equal(res.ranTwice, 0, 'no job ran twice (no worker died)')
    t.equal(res.executions, res.succeeded, 'one execution per succeeded job')
    t.same(overlap.lateOldWrites.map((x) => `${x.id} ${x.state}`), [], 'no write of the dead boss stored after the new boss began')
  })
}
