/**
 * Fault: a 3-server NATS cluster (every process given all three URLs, job store with 3 replicas)
 * loses the server leading the job store's stream, mid-run. Guarantee 2: nothing acknowledged is
 * lost; no bosun process dies, so nothing runs twice and every process carries on by itself.
 */
import t, { type Test } from 'tap'
import { startNatsCluster, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import {
  attributeDuplicates,
  executionGapAfter,
  executionLines,
  natsStreamCurrent,
  natsStreamLeader,
  recordFault,
  settleWorkload,
  startClusterPatiently,
  startWorkload,
} from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNS = 3
const JOBS = 2000

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNatsCluster(3)
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

async function leaderRun(t: Test, c: TestCluster, run: number, stream: string): Promise<void> {
  const before = await c.waitReady(2, 60_000)
  const pids = [c.api, ...c.workers].map((p) => p.pid)
  const w = startWorkload(c, { count: JOBS, jobMs: 3, fn: 'start' })
  await waitFor(() => executionLines(w.runsFile).length >= JOBS * 0.25, { timeoutMs: 60_000, what: 'a quarter of the jobs started' })
  const victim = await waitFor(() => natsStreamLeader(nats, stream), { timeoutMs: 30_000, what: `leader of ${stream}` })
  const faultAt = Date.now()
  await victim.kill()

  const r = await settleWorkload(c, w, 120_000)
  const dup = attributeDuplicates(w.runsFile, new Set(), faultAt)
  const gap = executionGapAfter(w.runsFile, faultAt)
  const newLeader = await natsStreamLeader(nats, stream)
  const fault = 'NATS cluster of 3 (R3 job store): kill -9 of the stream leader'
  recordFault({ fault, run, ...r, failoverGapMs: gap, notes: `killed server :${victim.port}; new leader :${newLeader?.port}` })
  t.comment(`run ${run}: ${JSON.stringify(r)}; duplicates ${dup.duplicates}; longest execution gap ${gap} ms`)

  t.equal(r.acknowledged, JOBS, 'every job was acknowledged')
  t.equal(r.lost, 0, 'no acknowledged job lost')
  t.equal(dup.duplicates, 0, 'no job started twice (no worker died)')
  t.ok(executionLines(w.runsFile).some((l) => l.at > faultAt), 'jobs ran after the kill (it hit mid-run)')
  t.not(newLeader, victim, 'another server leads the stream')
  t.same([c.api, ...c.workers].map((p) => (p.running ? p.pid : -1)), pids, 'no bosun process exited')
  const after = await c.waitReady(2, 60_000)
  t.equal(after.boss?.pid, before.boss?.pid, 'the same boss process')

  await victim.restart() // back to 3 servers for the next run
  await waitFor(() => natsStreamCurrent(nats, stream), { timeoutMs: 60_000, what: 'every stream replica current again' })
}

t.test('kill -9 of the NATS server leading the job store stream mid-run', async (t) => {
  const cluster = uniqueName('fnc')
  const c = new TestCluster({ zk, nats, cluster, workers: 3, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS, env: { JOB_STORE_REPLICAS: '3' } })
  t.teardown(() => c.close())
  await startClusterPatiently(c, 2)
  const stream = `KV_bosun_${cluster}_jobs`
  t.ok(await waitFor(() => natsStreamCurrent(nats, stream), { timeoutMs: 60_000, what: 'the job store stream replicated and current' }), 'the job store stream has replicas, all current')
  for (let run = 1; run <= RUNS; run++) await t.test(`run ${run}`, (t) => leaderRun(t, c, run, stream))
})
