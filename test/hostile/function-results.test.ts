/**
 * Hostile job functions on a real cluster: results that cannot be sent (BigInt, a cycle, 2 MiB),
 * non-Error throws, process.exit() and a busy loop past timeoutMs. Each job must fail with a clear
 * error code, and the worker that ran it must stay the same live process and run the next job.
 */
import t, { type Test } from 'tap'
import { TestCluster } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { deadProcesses, healthProblem, hostileFunctionsDir, SESSION_TIMEOUT_MS, startCluster } from './helpers.js'

const zk = await startZooKeeper()
const nats = await startNats()
// One boss and ONE job worker: every job below runs on the same worker process.
const cluster = new TestCluster({
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  zk,
  nats,
  cluster: uniqueName('hfn'),
  workers: 2,
  concurrency: 2,
  functionsDir: hostileFunctionsDir(),
  env: { FUNCTION_KILL_GRACE_MS: '300' },
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await startCluster(cluster)
const state = await cluster.waitReady(1)
const jobWorker = state.workers[0]!
const jobWorkerProcess = cluster.workers.find((w) => w.pid === jobWorker.pid)!

/** Submit, wait for the final state, and check the worker is unchanged and runs an echo next. */
async function runHostile(t: Test, fn: string, payload: unknown, extra: Record<string, unknown> = {}): Promise<any> {
  const r = await cluster.post('/jobs', { function: fn, payload, maxAttempts: 1, ...extra })
  t.equal(r.status, 202, `${fn} accepted`)
  const job = await cluster.waitJob(r.body.id, 30_000)
  t.equal(job.worker, jobWorker.id, 'it ran on the job worker')
  t.ok(jobWorkerProcess.running, 'the worker process is still running')
  t.same(deadProcesses(cluster), [], 'no process exited')
  const next = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: { after: fn } })
  t.equal(next.body?.state, 'succeeded', `the next job after ${fn} succeeds`)
  t.equal(next.body?.worker, jobWorker.id, 'on the same worker')
  t.same(next.body?.result, { after: fn })
  const now = await cluster.clusterState()
  t.equal(now.workers.find((w) => w.id === jobWorker.id)?.pid, jobWorker.pid, 'same worker pid in GET /cluster')
  return job
}

t.test('a BigInt result fails with RESULT_NOT_SERIALIZABLE', async (t) => {
  const job = await runHostile(t, 'bigint', null)
  t.equal(job.state, 'failed')
  t.equal(job.error?.code, 'BOSUN_ERR_RESULT_NOT_SERIALIZABLE')
  t.match(job.error?.message, /BigInt/i, 'the message names the cause')
})

t.test('a cyclic result fails with RESULT_NOT_SERIALIZABLE', async (t) => {
  const job = await runHostile(t, 'cyclic', null)
  t.equal(job.state, 'failed')
  t.equal(job.error?.code, 'BOSUN_ERR_RESULT_NOT_SERIALIZABLE')
  t.match(job.error?.message, /circular/i)
})

t.test('a 2 MiB result (over the NATS max payload) fails with RESULT_TOO_LARGE', async (t) => {
  const job = await runHostile(t, 'huge', { bytes: 2 * 1024 * 1024 })
  t.equal(job.state, 'failed')
  t.equal(job.error?.code, 'BOSUN_ERR_RESULT_TOO_LARGE')
  t.match(job.error?.message, /too large/)
  t.notOk('result' in job, 'no partial result is stored')
})

t.test('non-Error throws fail the job with a message describing the value', async (t) => {
  for (const [value, pattern] of [
    [42, /42/],
    [null, /null/],
    [{ reason: 'plain object' }, /plain object/],
    ['a bare string', /a bare string/],
    [['array', 1], /array/],
  ] as const) {
    const job = await runHostile(t, 'throw-value', { value })
    t.equal(job.state, 'failed', `throw ${JSON.stringify(value)} → failed`)
    t.equal(typeof job.error?.message, 'string')
    t.match(job.error?.message, pattern, `message for ${JSON.stringify(value)}: ${job.error?.message}`)
  }
})

t.test('process.exit() in a function ends its thread only: FUNCTION_CRASHED', async (t) => {
  const job = await runHostile(t, 'exit', { code: 7 })
  t.equal(job.state, 'failed')
  t.equal(job.error?.code, 'BOSUN_ERR_FUNCTION_CRASHED')
  t.match(job.error?.message, /exit code 7|ended its thread/)
})

t.test('a busy loop past timeoutMs is stopped: FUNCTION_TIMEOUT, and the worker keeps serving', async (t) => {
  const t0 = Date.now()
  const job = await runHostile(t, 'busyloop', null, { timeoutMs: 300 })
  t.equal(job.state, 'failed')
  t.equal(job.error?.code, 'BOSUN_ERR_FUNCTION_TIMEOUT')
  t.match(job.error?.message, /timed out after 300 ms/)
  t.ok(Date.now() - t0 < 20_000, 'stopped promptly')
})

t.test('two busy loops fill the worker; both are stopped and capacity comes back', async (t) => {
  const ids = await Promise.all(
    [1, 2].map(
      async () =>
        (await cluster.post('/jobs', { function: 'busyloop', timeoutMs: 300, maxAttempts: 1 })).body.id as string,
    ),
  )
  for (const id of ids) t.equal((await cluster.waitJob(id, 30_000)).error?.code, 'BOSUN_ERR_FUNCTION_TIMEOUT')
  const echoes = await Promise.all(
    [1, 2, 3].map((i) => cluster.post('/jobs?wait=10000', { function: 'echo', payload: i })),
  )
  t.same(
    echoes.map((e) => e.body?.state),
    ['succeeded', 'succeeded', 'succeeded'],
  )
})

t.test(
  'an echo whose payload + result together exceed the store record limit still reaches a final state',
  async (t) => {
    // 600 KB in, 600 KB out: each fits every limit alone, the finished record (payload + result) does not.
    const payload = 'p'.repeat(600 * 1024)
    const r = await cluster.post('/jobs', { function: 'echo', payload, maxAttempts: 1 })
    t.equal(r.status, 202)
    const job = await cluster.waitJob(r.body.id, 20_000)
    t.ok(['succeeded', 'failed'].includes(job.state), `final: ${job.state} ${job.error?.code ?? ''}`)
    if (job.state === 'succeeded') t.equal(job.result, payload, 'the result is the payload')
    else t.match(job.error?.code, /^BOSUN_ERR_/, 'failed with a bosun code')
    t.equal(await healthProblem(cluster), undefined, 'the cluster keeps working')
  },
)

t.test('after all of it every process is alive and the cluster works', async (t) => {
  t.equal(await healthProblem(cluster), undefined)
})
