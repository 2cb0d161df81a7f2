/**
 * The test harness's readiness check (`TestCluster.waitReady`, test/helpers/processes.ts) must count
 * only the cluster's own live processes. A cluster started over the name of one whose workers were
 * just killed sees their ZooKeeper registrations until their sessions expire: a boss and workers with
 * pids that no longer run. Counting those, `start()` returned before its own boss was elected and a
 * bench over the same store read `/proc/<dead pid>` (bench/e2e/cluster.ts's reopening, 2026-12-05).
 * Real ZooKeeper, real nats-server, the built processes.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster } from '../helpers/processes.js'

// Long enough that the killed cluster's registrations outlive the second cluster's start.
const SESSION_MS = 8_000

const zk = await startZooKeeper()
const nats = await startNats()
const name = uniqueName('ready')
const first = new TestCluster({ zk, nats, cluster: name, workers: 2, concurrency: 2, sessionTimeoutMs: SESSION_MS })
const second = new TestCluster({ zk, nats, cluster: name, workers: 2, concurrency: 2, sessionTimeoutMs: SESSION_MS })
t.teardown(async () => {
  await second.close()
  await first.close()
  await nats.close()
  await zk.close()
})

t.test("a cluster reopened over a killed one's name is ready only with its own boss and workers", async (t) => {
  await first.start()
  const killedBoss = (await first.clusterState()).boss!
  await Promise.all(first.workers.map((w) => w.kill()))
  await first.api.stop()

  const state = await second.start().then((c) => c.clusterState())
  const own = new Set(second.workers.filter((w) => w.running).map((w) => w.pid))
  t.ok(state.boss, 'a boss is elected')
  t.not(state.boss?.pid, killedBoss.pid, "the boss is not the killed cluster's")
  t.ok(own.has(state.boss!.pid), `the boss (pid ${state.boss?.pid}) is one of this cluster's processes`)
  const workers = state.workers.filter((w) => own.has(w.pid))
  t.ok(workers.length >= 1, `a job-running worker of its own: ${JSON.stringify(state.workers.map((w) => w.pid))}`)
})
