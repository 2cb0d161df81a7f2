/**
 * SIGTERM of a worker running a job that ignores its abort signal, with the largest
 * WORKER_SHUTDOWN_GRACE_MS the configuration accepts: the process deletes its znodes first (while it
 * is still draining), hands the job back, and exits 0 within the contract's 10 s.
 * Real ZooKeeper, real nats-server, the built API and worker processes.
 */
import t, { type Test } from 'tap'
import zookeeper from 'node-zookeeper-client'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { rawClient } from '../fixtures/zk-tools.js'
import { workerEnv } from '../../worker/config.js'

/** README "Guarantees, and how they are kept": after SIGTERM a worker exits 0 within 10 s. */
const STOP_LIMIT_MS = 10_000
const MAX_GRACE_MS = workerEnv.WORKER_SHUTDOWN_GRACE_MS.max

const zk = await startZooKeeper()
const nats = await startNats()
const name = uniqueName('sigt')
const cluster = new TestCluster({
  zk,
  nats,
  cluster: name,
  workers: 2,
  concurrency: 2,
  functionsDir: e2eFunctionsDir(),
  env: { WORKER_SHUTDOWN_GRACE_MS: String(MAX_GRACE_MS) },
})
let raw: zookeeper.Client | undefined
t.teardown(async () => {
  raw?.close()
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()
raw = await rawClient(zk.connect)

const children = (path: string) =>
  new Promise<string[]>((res, rej) => raw.getChildren(path, (e, c) => (e ? rej(e) : res(c))))
const data = (path: string) =>
  new Promise<string>((res) => raw.getData(path, (e, d) => res(e ? '' : (d ?? Buffer.alloc(0)).toString('utf8'))))

/** The znodes of node `id`: its announcement, its worker registration, its election candidacy. */
async function znodesOf(id: string): Promise<string[]> {
  const found: string[] = []
  if ((await children(`/${name}/nodes`)).includes(id)) found.push(`nodes/${id}`)
  if ((await children(`/${name}/services/worker`)).includes(id)) found.push(`services/worker/${id}`)
  for (const c of await children(`/${name}/elections/boss`)) {
    if ((await data(`/${name}/elections/boss/${c}`)).includes(`"${id}"`)) found.push(`elections/boss/${c}`)
  }
  return found
}

/** SIGTERM `workerId` while it runs a stubborn job; asserts the budget, the znodes and the hand-back. */
async function sigterm(t: Test, workerId: string): Promise<void> {
  const proc = cluster.workers.find((w) => w.name === workerId)!
  const sub = await cluster.post('/jobs', { function: 'stubborn', payload: { ms: 120_000 }, timeoutMs: 300_000 })
  t.equal(sub.status, 202)
  const id = sub.body.id as string
  await waitFor(
    async () => {
      const j = (await cluster.get(`/jobs/${id}`)).body
      return j?.state === 'running' && j.worker === workerId
    },
    { timeoutMs: 30_000, what: 'the job running on the worker' },
  )
  t.same((await znodesOf(workerId)).length, 3, 'the worker has its three znodes')

  const t0 = Date.now()
  const exited = proc.stop().then((code) => ({ code, at: Date.now() }))
  // Znodes go first, before the drain: while the process is still running.
  const goneAt = await waitFor(async () => ((await znodesOf(workerId)).length === 0 ? Date.now() : 0), {
    timeoutMs: 20_000,
    intervalMs: 25,
    what: "the worker's znodes deleted",
  }).catch(() => undefined)
  const stillRunningWhenGone = proc.running
  const { code, at } = await exited
  const tookMs = at - t0
  t.ok(goneAt !== undefined, 'its znodes are deleted')
  t.ok(stillRunningWhenGone, `deleted while the process still drains (after ${goneAt ? goneAt - t0 : '?'} ms)`)
  t.equal(code, 0, 'exit 0')
  t.ok(tookMs < STOP_LIMIT_MS, `exited in ${tookMs} ms (< ${STOP_LIMIT_MS})`)
  t.same(await znodesOf(workerId), [], 'no znode left behind')
  const after = await cluster.clusterState()
  t.notOk(
    after.workers.some((w) => w.id === workerId),
    'GET /cluster no longer lists it',
  )
  // Handed back (or requeued once the worker was gone), not failed: queued again for another worker.
  const job = await waitFor(
    async () => {
      const j = (await cluster.get(`/jobs/${id}`)).body
      return j?.state !== 'running' ? j : undefined
    },
    { timeoutMs: 30_000, what: 'the job no longer running' },
  )
  t.equal(job.state, 'queued', `handed back: ${JSON.stringify(job)}`)
}

t.test(`SIGTERM with WORKER_SHUTDOWN_GRACE_MS=${MAX_GRACE_MS} and a job ignoring its signal`, async (t) => {
  await sigterm(t, (await cluster.clusterState()).workers[0]!.id)
})

t.test('the same with the largest FUNCTION_KILL_GRACE_MS (the aborted job outlives the hand-back wait)', async (t) => {
  const killGrace = String(workerEnv.FUNCTION_KILL_GRACE_MS.max)
  const proc = cluster.addWorker({ FUNCTION_KILL_GRACE_MS: killGrace })
  await waitFor(async () => (await cluster.clusterState()).workers.some((w) => w.id === proc.name), {
    timeoutMs: 60_000,
    what: 'the new worker registered',
  })
  await sigterm(t, proc.name)
})
