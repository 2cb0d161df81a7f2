/** Backpressure (429 past the queued-jobs limit) and retention (finished jobs are removed). */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const MAX_QUEUED = 50
const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('lim'),
  workers: 2,
  functionsDir: e2eFunctionsDir(),
  env: { BOSUN_MAX_QUEUED_JOBS: String(MAX_QUEUED), JOB_RETENTION_MS: '1000' },
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

t.test(
  'past the queued-jobs limit the API answers 429 with Retry-After, and accepts again once it drains',
  async (t) => {
    const delayed: string[] = []
    let refused: { status: number; body: any; headers: Headers } | undefined
    for (let i = 0; i < 400 && !refused; i++) {
      const r = await cluster.post('/jobs', { function: 'echo', payload: i, delayMs: 5000 })
      if (r.status === 202) delayed.push(r.body.id)
      else refused = r
    }
    t.ok(refused, 'a submit was refused')
    t.equal(refused!.status, 429)
    t.equal(refused!.body.code, 'BOSUN_ERR_QUEUE_FULL')
    t.ok(Number(refused!.headers.get('retry-after')) >= 1, 'Retry-After is set')
    t.ok(delayed.length >= MAX_QUEUED, `accepted ${delayed.length} before refusing`)
    t.ok(delayed.length < MAX_QUEUED * 4, 'the queue did not grow without bound')
    // Once the delayed jobs have run, submits are accepted again.
    await waitFor(async () => (await cluster.post('/jobs', { function: 'echo', payload: 'after' })).status === 202, {
      timeoutMs: 30_000,
      what: 'accepted again',
    })
    const states = await Promise.all(delayed.map(async (id) => (await cluster.waitJob(id)).state))
    t.same(new Set(states), new Set(['succeeded']), 'every accepted delayed job ran')
  },
)

t.test('finished jobs are removed after the retention time', async (t) => {
  // The boss's queue report may still count the first test's jobs for a moment: a 429 here is the
  // backpressure doing its job, and a client retries after Retry-After.
  let r = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: 'short-lived' })
  for (let i = 0; i < 10 && r.status === 429; i++) {
    await new Promise((resolve) => setTimeout(resolve, 1000 * Number(r.headers.get('retry-after') ?? 1)))
    r = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: 'short-lived' })
  }
  t.equal(r.status, 200, `answered with the finished job (${JSON.stringify(r.body)})`)
  t.equal(r.body.state, 'succeeded')
  t.equal((await cluster.get(`/jobs/${r.body.id}`)).status, 200, 'readable right after it finished')
  await waitFor(async () => (await cluster.get(`/jobs/${r.body.id}`)).status === 404, {
    timeoutMs: 15_000,
    what: 'job purged',
  })
  t.pass('purged after JOB_RETENTION_MS')
})
