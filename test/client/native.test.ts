/**
 * The native client against a real cluster: a submit resolves once the job is stored and the job
 * runs; concurrent one-by-one submits are group-committed (far fewer batch messages than jobs);
 * batches split past max_payload; idempotency keys resolve as the API resolves them; a bad spec is
 * refused before anything is written; close() is idempotent.
 */
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { NativeClient } from '../../client/native.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper()
const nats = await startNats()
const name = uniqueName('nc')
const cluster = new TestCluster({ zk, nats, cluster: name, workers: 2, concurrency: 8 })
const nc = await connect({ servers: nats.url })
t.teardown(async () => {
  await nc.close()
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()
const client = await NativeClient.connect({ natsUrl: nats.url, cluster: name })
t.teardown(() => client.close())

async function submits(): Promise<number> {
  return (await (await jetstreamManager(nc)).streams.info(`bosun_${name}_submit`)).state.last_seq
}

t.test('a submitted job is stored, then runs', async (t) => {
  const { id } = await client.submit({ function: 'echo', payload: { hello: 'native' } })
  const job = await cluster.waitJob(id, 30_000)
  t.equal(job.state, 'succeeded')
  t.same(job.result, { hello: 'native' })
})

t.test('64 concurrent submits are group-committed and all run', async (t) => {
  const before = await submits()
  const ids = await Promise.all(
    Array.from({ length: 64 }, (_, i) => client.submit({ function: 'echo', payload: i }).then((r) => r.id)),
  )
  const written = (await submits()) - before
  t.equal(new Set(ids).size, 64, 'distinct ids')
  t.ok(written < 16, `${written} batch messages for 64 jobs`)
  const jobs = await Promise.all(ids.map((id) => cluster.waitJob(id, 30_000)))
  t.same(
    jobs.map((j) => j.result),
    Array.from({ length: 64 }, (_, i) => i),
    'each ran with its own payload',
  )
})

t.test('submitBatch stores every job in order, split past max_payload', async (t) => {
  const big = 'x'.repeat(200 * 1024)
  const { ids } = await client.submitBatch(
    Array.from({ length: 8 }, (_, i) => ({ function: 'echo', payload: { i, big } })),
  )
  t.equal(ids.length, 8)
  t.ok(new Set(ids.map((id) => id.slice(0, 26))).size >= 2, 'more than one batch message')
  const jobs = await Promise.all(ids.map((id) => cluster.waitJob(id, 30_000)))
  t.same(
    jobs.map((j) => (j.result as { i: number }).i),
    [0, 1, 2, 3, 4, 5, 6, 7],
  )
})

t.test('the same idempotencyKey gives the same job, from the client and from the API', async (t) => {
  const key = uniqueName('key')
  const [a, b] = await Promise.all([
    client.submit({ function: 'echo', idempotencyKey: key }),
    client.submit({ function: 'echo', idempotencyKey: key }),
  ])
  t.equal(a.id, b.id, 'two client submits')
  const viaApi = await cluster.post('/jobs', { function: 'echo', idempotencyKey: key })
  t.equal(viaApi.body.id, a.id, 'and the API')
})

t.test('a bad spec is refused before anything is written', async (t) => {
  const before = await submits()
  await t.rejects(client.submit({ function: 'Not A Name' }), { code: 'BOSUN_ERR_VALIDATION' })
  await t.rejects(client.submitBatch([{ function: 'echo' }, { function: 'echo', priority: 5000 }]), {
    code: 'BOSUN_ERR_VALIDATION',
  })
  t.equal(await submits(), before, 'nothing written')
})

t.test('close is idempotent; submits after it are refused', async (t) => {
  const other = await NativeClient.connect({ natsUrl: nats.url, cluster: name })
  const pending = other.submit({ function: 'echo' })
  const closing = other.close()
  t.equal(other.close(), closing)
  await closing
  t.ok((await pending).id, 'a submit in flight at close completes')
  await t.rejects(other.submit({ function: 'echo' }), { code: 'BOSUN_ERR_CLOSED' })
  await waitFor(async () => (await cluster.get(`/jobs/${(await pending).id}`)).status === 200, {
    what: 'the job readable',
  })
})
