/**
 * Shared function threads on a real cluster (README "Job functions"): a worker whose two jobs share
 * one thread (WORKER_CONCURRENCY=2, FUNCTION_THREADS=1). When one job ignores its abort signal and
 * its thread is stopped, the other is handed back — run again, not failed, no attempt counted.
 */
import { mkdtempSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('shr'),
  workers: 2,
  functionsDir: e2eFunctionsDir(),
  env: { WORKER_CONCURRENCY: '2', FUNCTION_THREADS: '1', FUNCTION_KILL_GRACE_MS: '300' },
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

t.test("a job whose shared thread is stopped for its neighbour's fault runs again, uncounted", async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'bosun-shr-')), 'runs.txt')
  const victim = await cluster.post('/jobs', { function: 'count', payload: { file, ms: 4000 }, maxAttempts: 1 })
  t.equal(victim.status, 202)
  const id = victim.body.id as string
  const first = await waitFor(
    async () => {
      const j = (await cluster.get(`/jobs/${id}`)).body
      return j?.state === 'running' ? j : undefined
    },
    { timeoutMs: 30_000, what: 'the victim running' },
  )
  // The runaway goes to the same worker: the boss is the other one, and this one has room for a second job.
  const runaway = await cluster.post('/jobs', {
    function: 'stubborn',
    payload: { ms: 60_000 },
    timeoutMs: 300,
    maxAttempts: 1,
  })
  t.equal(runaway.status, 202)
  const stopped = await cluster.waitJob(runaway.body.id as string)
  t.equal(stopped.state, 'failed')
  t.equal(stopped.worker, first.worker, 'it ran beside the victim')
  t.match(stopped.error, { code: 'BOSUN_ERR_FUNCTION_TIMEOUT', message: /ignored its abort signal/ })

  const done = await cluster.waitJob(id, 30_000)
  t.equal(done.state, 'succeeded', `run again, not failed, with maxAttempts 1: ${JSON.stringify(done.error)}`)
  t.equal(done.attempts, 1, 'the interrupted attempt is not counted')
  t.same(
    done.history.map((h: { outcome: string }) => h.outcome),
    ['lost', 'succeeded'],
    'its history says the first attempt was lost',
  )
  t.ok(existsSync(file))
  t.equal(readFileSync(file, 'utf8').trim().split('\n').length, 1, 'the interrupted run never completed')
})
