/**
 * Fault: the boss's ZooKeeper session expires while it holds a large queue. The boss reaches
 * ZooKeeper through a TCP proxy; 5,000 jobs are submitted while only one slow worker runs them, so
 * thousands sit queued in the boss; then the proxy stalls past the session timeout. The new boss
 * must load the queue and finish every job, without overlapping the old one (epochs on the wire),
 * and the old boss must come back as a worker on a new session without a process restart.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import {
  executionGapAfter,
  executionLines,
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
const JOBS = 5000
t.setTimeout(900_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  t.test(`the boss's session expires while it holds ${JOBS} queued jobs (run ${run})`, async (t) => {
    const cluster = uniqueName('be')
    const proxy = await startTcpProxy(zk.connect)
    t.teardown(() => proxy.close())
    const c = new TestCluster({ zk, nats, cluster, workers: 0, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
    t.teardown(() => c.close())
    const first = c.addWorker({ ZK_CONNECT: proxy.address })
    await waitForLog(first, /I am the boss/, 0, 120_000)
    await startCluster(c, 120_000, 0)
    // One slow worker: it cannot keep up, so the queue stays in the boss.
    c.addWorker({ WORKER_CONCURRENCY: '1' })
    await c.waitReady(1, 120_000)
    const before = await c.clusterState()
    t.equal(before.boss?.pid, first.pid, 'the proxied worker is the boss')
    const oldEpoch = before.boss!.epoch
    const actions = await watchBossActions(nats.url, cluster)
    t.teardown(() => actions.stop())
    const w = startWorkload(c, { count: JOBS, jobMs: 5, batchSize: 500 })
    await w.done
    t.equal(w.acknowledged.length, JOBS, 'all jobs acknowledged before the fault')
    const faultAt = Date.now() // before the fault, so no reaction to it can carry an earlier time
    proxy.stall()
    // Capacity for after the takeover (the old boss cannot see them: its ZooKeeper link is stalled).
    c.addWorker()
    c.addWorker()
    const lost = await waitForLog(first, /session lost/, faultAt, 30_000)
    const after = await waitForNewBoss(c, before.boss!.id, 30_000)
    const newEpoch = after.boss.epoch
    const newBoss = c.workers.find((p) => p.pid === after.boss.pid)!
    const active = await waitForLog(newBoss, /boss term dispatching/, faultAt, 60_000)
    const loaded = await waitForLog(newBoss, /job store loaded/, faultAt, 60_000)
    proxy.heal()
    const healedAt = Date.now()
    const rejoined = await waitFor(async () => (await c.clusterState()).workers.find((x) => x.pid === first.pid), { timeoutMs: 30_000, what: 'the old boss back as a worker' }).catch(() => undefined)
    const res = await settleWorkload(c, w, 180_000)
    const gap = executionGapAfter(w.runsFile, faultAt)
    const overlap = actions.overlap(oldEpoch, newEpoch)
    const newSession = logEntries(first, /ZooKeeper connected/, lost.time)[0]
    const ranOnOld = executionLines(w.runsFile).filter((l) => l.pid === first.pid && l.at > healedAt).length
    const summary = `${actions.summary(overlap)}; new boss active in ${active.tookMs} ms, loaded ${loaded.jobs} jobs (${loaded.unfinished} unfinished) in ${loaded.tookMs} ms; old boss: session lost ${lost.time - faultAt} ms after the stall, new session ${newSession ? newSession.time - healedAt : '?'} ms after the heal, ran ${ranOnOld} jobs after it`
    recordFault({ fault: `boss session expiry with ${JOBS} queued`, run, ...res, failoverGapMs: gap, notes: summary })
    t.comment(`run ${run}: ${JSON.stringify(res)} gap ${gap} ms; ${summary}`)
    for (const x of overlap.lateOldWrites.slice(0, 5)) t.comment(`late write of the old boss: ${JSON.stringify(x)}`)
    t.ok(newEpoch > oldEpoch, 'the new boss has a greater epoch')
    t.ok(Number(loaded.unfinished) >= JOBS / 2, `the new boss took over a large queue (${loaded.unfinished} unfinished jobs loaded)`)
    t.same(overlap.lateOldWrites.map((x) => `${x.id} ${x.state} seq ${x.storedSeq}`), [], 'no write of the old epoch stored after the first write of the new epoch')
    t.same(overlap.lateOldDispatches.map((x) => `${x.to} ${x.jobs} jobs`), [], 'no dispatch of the old epoch accepted after the new boss began')
    t.ok(first.running, 'the old boss process was not restarted')
    t.ok(newSession, 'the old boss opened a new ZooKeeper session')
    t.ok(rejoined, 'the old boss is listed as a worker again')
    t.equal(res.lost, 0, 'no acknowledged job lost')
    t.equal(res.ranTwice, 0, 'no job ran twice (no worker died)')
  })
}
