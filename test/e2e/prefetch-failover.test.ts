/**
 * Prefetch across a boss change, end to end (README "Prefetch", guarantee 3): a worker holds a short
 * job ahead of its one slot, behind a long one, when the boss is killed (-9) and a fresh worker with
 * a free slot joins. The new boss must adopt the waiting job from the worker's inventory — not
 * dispatch it again to the free slot — so it runs once, on the worker that held it, after the long
 * one. GET /cluster shows the waiting job meanwhile.
 */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { ROOT, TestCluster, e2eFunctionsDir, waitForNewBoss } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

t.test('a job held ahead of a slot when the boss dies runs once, on the worker that held it', async (t) => {
  const c = new TestCluster({
    zk,
    nats,
    cluster: uniqueName('pf'),
    workers: 0,
    concurrency: 1,
    functionsDir: e2eFunctionsDir(),
    sessionTimeoutMs: 2000,
    env: { WORKER_PREFETCH: '1' },
  })
  t.teardown(() => c.close())
  // The boss and the candidate next in line run only the bundled functions: `start` jobs go to w3 and w4.
  const bundled = { FUNCTIONS_DIR: join(ROOT, 'worker', 'functions') }
  const boss = c.addWorker(bundled)
  await c.start(120_000, 0)
  c.addWorker(bundled)
  await waitFor(async () => (await c.clusterState()).workers.length === 1, { what: 'the standby registered' })
  const holder = c.addWorker()
  await waitFor(async () => (await c.clusterState()).workers.length === 2, { what: 'w3 registered' })

  const file = join(tmpdir(), `${uniqueName('starts')}.txt`)
  writeFileSync(file, '')
  // A short job first: the boss sees that w3's jobs are short, so it may dispatch ahead to it.
  const warm = await c.post('/jobs?wait=10000', { function: 'start', payload: { file, ms: 5, n: 'warm' } })
  t.equal(warm.body.state, 'succeeded')
  // The boss has the warm-up's result (the worker wrote its final itself; the result follows it).
  await waitFor(
    async () => {
      const stats = (await c.get('/cluster/stats')).body
      return stats.finished >= 1 && stats.running === 0
    },
    { what: 'the boss saw the result' },
  )
  const batch = await c.post('/jobs/batch', {
    jobs: [
      { function: 'start', payload: { file, ms: 6000, n: 'long' } },
      { function: 'start', payload: { file, ms: 5, n: 'short' } },
    ],
  })
  t.equal(batch.status, 202)
  const [longId, shortId] = batch.body.jobs.map((j: { id: string }) => j.id) as [string, string]
  const held = await waitFor(
    async () => (await c.clusterState()).workers.find((w: any) => w.id === 'w3' && w.running === 1 && w.waiting === 1),
    { what: 'w3 running the long job with the short one waiting (GET /cluster)' },
  )
  t.ok(held, 'the short job waits on w3, ahead of a free slot')

  const before = await c.clusterState()
  await boss.kill()
  c.addWorker() // w4: a free slot the short job must not go to
  const after = await waitForNewBoss(c, before.boss!.id)
  t.equal(after.boss.id, 'w2', 'the standby took over')

  const long = await c.waitJob(longId, 30_000)
  const short = await c.waitJob(shortId, 30_000)
  t.same([long.state, short.state], ['succeeded', 'succeeded'])
  t.same([long.attempts, short.attempts], [1, 1], 'no attempt was lost or repeated')
  const starts = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
  const startsOf = (id: string) => starts.filter((s) => s[0] === id)
  t.equal(startsOf(shortId).length, 1, 'the short job started once')
  t.equal(startsOf(longId).length, 1, 'the long job started once')
  t.equal(startsOf(shortId)[0]![2], String(holder.pid), 'on the worker that held it')
  t.equal(short.worker, 'w3')
  t.ok(
    Number(startsOf(shortId)[0]![3]) >= Number(startsOf(longId)[0]![3]) + 5000,
    'after the long job had its slot (it waited there, it was not dispatched again)',
  )
})
