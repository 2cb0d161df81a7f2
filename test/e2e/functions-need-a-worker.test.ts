/**
 * The API accepts a function only when a live *worker* advertises it. With `worker=1` the single
 * worker process is the boss and runs no jobs: a submit answers 404 (not a 202 for a job that would
 * never run). A second worker makes the functions known, and the job runs on it.
 * Real ZooKeeper, real nats-server, the built API and worker processes.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({ zk, nats, cluster: uniqueName('onew'), workers: 1, concurrency: 2 })
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

t.test('one worker (the boss): POST /jobs and /jobs/batch answer 404 UNKNOWN_FUNCTION', async (t) => {
  const state = await cluster.clusterState()
  t.ok(state.boss, 'the only worker is the boss')
  t.same(state.workers, [], 'and no worker takes jobs')
  const one = await cluster.post('/jobs', { function: 'echo', payload: 'x' })
  t.equal(one.status, 404, `POST /jobs: ${JSON.stringify(one.body)}`)
  t.equal(one.body?.code, 'BOSUN_ERR_UNKNOWN_FUNCTION')
  const batch = await cluster.post('/jobs/batch', { jobs: [{ function: 'echo' }, { function: 'noop' }] })
  t.equal(batch.status, 404, `POST /jobs/batch: ${JSON.stringify(batch.body)}`)
  t.equal(batch.body?.code, 'BOSUN_ERR_UNKNOWN_FUNCTION')
  t.same(batch.body?.details, { index: 0 }, 'names the first item')
  const listed = await cluster.get('/jobs?limit=10')
  t.same(listed.body?.jobs, [], 'nothing was stored')
})

t.test('a second worker joins: 202 and the job succeeds on it', async (t) => {
  const boss = (await cluster.clusterState()).boss!
  cluster.addWorker()
  await cluster.waitReady(1)
  const res = await waitFor(
    async () => {
      const r = await cluster.post('/jobs', { function: 'echo', payload: { hello: 'w2' } })
      return r.status === 202 ? r : undefined
    },
    { timeoutMs: 30_000, what: 'a 202 once the second worker is registered' },
  )
  t.equal(res.status, 202)
  const job = await cluster.waitJob(res.body.id, 30_000)
  t.equal(job.state, 'succeeded')
  t.same(job.result, { hello: 'w2' })
  t.not(job.worker, boss.id, 'run by the worker, not by the boss')
  const batch = await cluster.post('/jobs/batch', { jobs: [{ function: 'echo' }, { function: 'noop' }] })
  t.equal(batch.status, 202, 'a batch is accepted too')
})
