import t from 'tap'
import { jetstreamManager } from '@nats-io/jetstream'
import { Kvm } from '@nats-io/kv'
import { jetstream } from '@nats-io/jetstream'
import { startNatsCluster } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { collectWatch, makeJob, natsConn, openStore } from './store-helpers.js'

t.test('replicas=3 on a 3-server JetStream cluster survives the loss of the stream leader', async (t) => {
  const cluster = await startNatsCluster(3)
  t.teardown(() => cluster.close())
  const nc = await natsConn(t, cluster.url)
  const store = await openStore(t, nc, { replicas: 3 })
  const status = await (await new Kvm(jetstream(nc)).open(store.bucket)).status()
  t.equal(status.replicas, 3, 'bucket replicated on 3 servers')
  t.equal(status.storage, 'file')

  const { state, stop } = collectWatch(store)
  t.teardown(stop)
  await waitFor(() => state.loaded, { what: 'initial load' })

  const jobs = Array.from({ length: 500 }, () => makeJob())
  const acked = await store.createMany(jobs)
  t.equal(acked.filter((r) => r.created).length, jobs.length)
  const m = await store.mutate(jobs[0]!.id, 1, (c) => ({ ...c, state: 'running' }), acked[0])

  // kill -9 the server leading the stream: a new leader is elected among the other two
  const jsm = await jetstreamManager(nc)
  const leader = (await jsm.streams.info(store.stream)).cluster?.leader
  t.ok(leader, `stream leader is ${leader}`)
  const victim = cluster.servers[Number(String(leader).slice(1)) - 1]!
  await victim.kill()

  // the store rides out the election: writes and reads succeed (retried within the operation budget)
  const after = Array.from({ length: 100 }, () => makeJob())
  const ackedAfter = await store.createMany(after)
  t.equal(ackedAfter.filter((r) => r.created).length, after.length, 'creates after the kill are acked')
  const m2 = await store.mutate(jobs[0]!.id, 1, (c) => ({ ...c, attempts: c.attempts + 1 }), m!)
  t.equal(m2!.job.attempts, 1)
  const found = await Promise.all([...jobs, ...after].map((j) => store.get(j.id)))
  t.equal(
    found.filter((f) => f !== null).length,
    jobs.length + after.length,
    'every acked job readable from the survivors',
  )
  const newLeader = (await jsm.streams.info(store.stream)).cluster?.leader
  t.not(newLeader, leader, `new stream leader ${newLeader}`)

  // the watch saw everything, in order, exactly once
  const total = jobs.length + 1 + after.length + 1
  await waitFor(() => state.entries.length >= total, { timeoutMs: 60_000, what: 'watch caught up' })
  t.equal(state.entries.length, total)
  const revisions = state.entries.map((e) => e.revision)
  t.ok(
    revisions.every((r, i) => i === 0 || r > revisions[i - 1]!),
    'strictly increasing revisions',
  )
  t.equal(state.entries.at(-1)!.job!.attempts, 1)
})
