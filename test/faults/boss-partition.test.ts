/**
 * Fault: a network partition between the boss and ZooKeeper only (its NATS link and every other
 * process stay connected). The boss reaches ZooKeeper through a TCP proxy that is cut (connections
 * reset) or stalled (bytes stop, sockets stay open) mid-run. The boss must demote itself within the
 * session timeout, the new boss must not overlap with it (epochs on the wire), and no acknowledged
 * job may be lost or run twice.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import {
  executionGapAfter,
  executions,
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

const runs: ('cut' | 'stall')[] = ['cut', 'stall', 'cut', 'stall', 'cut', 'stall']
runs.forEach((mode, i) => {
  const run = Math.floor(i / 2) + 1
  t.test(`boss↔ZooKeeper partition (${mode}) mid-run (run ${run})`, async (t) => {
    const cluster = uniqueName('bz')
    const proxy = await startTcpProxy(zk.connect)
    t.teardown(() => proxy.close())
    const c = new TestCluster({ zk, nats, cluster, workers: 3, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
    t.teardown(() => c.close())
    // The first worker reaches ZooKeeper through the proxy and becomes the boss; the rest connect direct.
    const first = c.addWorker({ ZK_CONNECT: proxy.address })
    await waitForLog(first, /I am the boss/, 0, 120_000)
    await startCluster(c, 120_000, 3)
    const before = await c.clusterState()
    t.equal(before.boss?.pid, first.pid, 'the proxied worker is the boss')
    const oldEpoch = before.boss!.epoch
    const actions = await watchBossActions(nats.url, cluster)
    t.teardown(() => actions.stop())
    const w = startWorkload(c, { count: JOBS, jobMs: 3 })
    await waitFor(() => executions(w.runsFile).size >= JOBS / 5, { timeoutMs: 60_000, what: 'a fifth of the jobs ran' })
    // Taken before the fault: the boss may see a cut's reset and log within the same millisecond.
    const faultAt = Date.now()
    if (mode === 'cut') proxy.cut()
    else proxy.stall()
    const demoted = await waitForLog(first, /^deposed/, faultAt, 30_000)
    const demoteMs = demoted.time - faultAt
    const after = await waitForNewBoss(c, before.boss!.id, 30_000)
    const newEpoch = after.boss.epoch
    await waitFor(() => actions.writes.filter((x) => x.epoch === newEpoch && x.storedSeq !== undefined).length >= 20, { timeoutMs: 30_000, what: 'the new boss writing' })
    proxy.heal()
    const healedAt = Date.now()
    const res = await settleWorkload(c, w, 90_000)
    const gap = executionGapAfter(w.runsFile, faultAt)
    const overlap = actions.overlap(oldEpoch, newEpoch)
    const rejoined = await waitFor(async () => (await c.clusterState()).workers.find((x) => x.pid === first.pid), { timeoutMs: 30_000, what: 'the old boss back as a worker' }).catch(() => undefined)
    const summary = `${actions.summary(overlap)}; old boss demoted ${demoteMs} ms after the ${mode} ("${demoted.msg}"); new boss ${Date.parse(after.boss.since) - faultAt} ms after it; healed after ${healedAt - faultAt} ms`
    recordFault({ fault: `boss↔ZooKeeper partition (${mode})`, run, ...res, failoverGapMs: gap, notes: summary })
    t.comment(`run ${run}: ${JSON.stringify(res)} gap ${gap} ms; ${summary}`)
    for (const x of overlap.lateOldWrites.slice(0, 5)) t.comment(`late write of the old boss: ${JSON.stringify(x)}`)
    for (const x of overlap.lateOldDispatches.slice(0, 5)) t.comment(`late dispatch of the old boss: ${JSON.stringify(x)}`)
    t.ok(demoteMs <= SESSION_MS, `the partitioned boss demoted itself within the session timeout (${demoteMs} ms)`)
    t.ok(newEpoch > oldEpoch, 'the new boss has a greater epoch')
    t.same(overlap.lateOldWrites.map((x) => `${x.id} ${x.state} seq ${x.storedSeq}`), [], 'no write of the old epoch stored after the first write of the new epoch')
    t.same(overlap.lateOldDispatches.map((x) => `${x.to} ${x.jobs} jobs`), [], 'no dispatch of the old epoch accepted after the new boss began')
    t.ok(rejoined, 'after the heal the old boss is a worker again (same process)')
    t.equal(res.acknowledged, JOBS, 'every job was acknowledged')
    t.equal(res.lost, 0, 'no acknowledged job lost')
    t.equal(res.ranTwice, 0, 'no job ran twice (no worker died)')
  })
})
