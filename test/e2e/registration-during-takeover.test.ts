/**
 * A worker that registers while a new boss is still taking over (asking every peer what it runs)
 * must be in that boss's fleet: the boss once dropped registry changes until its term was active,
 * so a worker that appeared during the inventory round was never dispatched to (the functions-dir
 * security test caught it by chance: every job then waited forever).
 *
 * Deterministic here: a peer that never answers holds the boss's inventory round open for the
 * inventory timeout (1 s); in that window (after the boss has read its fleet and asked the silent
 * peer) a worker registration appears (written by the test,
 * its NATS address served by the test). The job submitted next can only run on that worker, so
 * it must receive the dispatch.
 */
import { connect as natsConnect } from '@nats-io/transport-node'
import zookeeper from 'node-zookeeper-client'
import t from 'tap'
import { TestCluster, spawnBosun } from '../helpers/processes.js'
import { freePort, startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { waitForLog } from '../helpers/workload.js'
import { zk as zkCalls, zkRaw } from '../hostile/helpers.js'

t.setTimeout(300_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const raw = await zkRaw(zk.connect)
const nc = await natsConnect({ servers: nats.url })
t.teardown(async () => {
  zkCalls.close(raw)
  await nc.close().catch(() => undefined)
  await nats.close()
  await zk.close()
})

const registration = (cluster: string, id: string) =>
  Buffer.from(
    JSON.stringify({
      v: 1,
      id,
      address: `bosun.${cluster}.proc.${id}`,
      host: 'test',
      pid: 1,
      meta: { role: 'worker', functions: ['echo'], capacity: 4 },
      registeredAt: new Date().toISOString(),
    }),
  )

t.test("a worker registering during the boss's inventory round gets the jobs", async (t) => {
  const cluster = uniqueName('rt')
  const c = new TestCluster({ zk, nats, cluster, workers: 0, sessionTimeoutMs: 2000 })
  t.teardown(() => c.close())
  // The silent peer: listed in nodes/, subscribed on NATS, never answers (the inventory waits 1 s).
  let askedAt = 0
  const silent = nc.subscribe(`bosun.${cluster}.proc.silent`, { callback: () => void (askedAt ||= Date.now()) })
  // The late worker: records every message it gets, answers none.
  const late: string[] = []
  const lateSub = nc.subscribe(`bosun.${cluster}.proc.late`, {
    callback: (_err, msg) => void late.push(JSON.parse(new TextDecoder().decode(msg.data)).type),
  })
  t.teardown(() => {
    silent.unsubscribe()
    lateSub.unsubscribe()
  })
  for (const dir of ['', '/nodes', '/services', '/services/worker'])
    t.equal(
      await zkCalls.create(raw, `/${cluster}${dir}`, Buffer.alloc(0)).then((o) => (o === 'NODE_EXISTS' ? 'OK' : o)),
      'OK',
      `/${cluster}${dir} exists`,
    )
  t.equal(
    await zkCalls.create(
      raw,
      `/${cluster}/nodes/silent`,
      registration(cluster, 'silent'),
      zookeeper.CreateMode.EPHEMERAL,
    ),
    'OK',
    'the silent peer is listed',
  )

  const boss = c.addWorker()
  const loading = await waitForLog(boss, /elected boss: loading jobs/, 0, 120_000)
  // The boss has read its fleet and is now waiting for the silent peer's inventory answer.
  await waitFor(() => askedAt > 0, { timeoutMs: 30_000, intervalMs: 5, what: 'the boss asking the silent peer' })
  t.equal(
    await zkCalls.create(
      raw,
      `/${cluster}/services/worker/late`,
      registration(cluster, 'late'),
      zookeeper.CreateMode.EPHEMERAL,
    ),
    'OK',
    'a worker registers meanwhile',
  )
  t.equal(
    await zkCalls.create(raw, `/${cluster}/nodes/late`, registration(cluster, 'late'), zookeeper.CreateMode.EPHEMERAL),
    'OK',
  )
  const writtenAt = Date.now()
  const active = await waitForLog(boss, /boss term dispatching/, loading.time, 30_000)
  t.ok(
    writtenAt < active.time,
    `the registration appeared during the inventory round (${active.time - writtenAt} ms before its end)`,
  )
  t.ok(
    active.time - loading.time >= 900,
    `the inventory round was held open by the silent peer (${active.time - loading.time} ms)`,
  )

  const port = await freePort()
  c.api = spawnBosun('api', 'dist/api/main.js', {
    ...c.env(),
    PORT: String(port),
    HOST: '127.0.0.1',
    BOSUN_NODE_ID: `api-${port}`,
  })
  c.apiUrl = `http://127.0.0.1:${port}`
  await waitFor(async () => (await fetch(`${c.apiUrl}/readyz`).catch(() => undefined))?.ok, {
    timeoutMs: 60_000,
    what: 'the API ready',
  })
  const res = await c.post('/jobs', { function: 'echo', payload: 'for the late worker' })
  t.equal(res.status, 202, 'the job is accepted (the late worker advertises echo)')
  const got = await waitFor(() => (late.includes('worker.dispatch') ? true : undefined), {
    timeoutMs: 15_000,
    what: 'a dispatch to the late worker',
  }).catch(() => false)
  t.ok(
    got,
    `the boss dispatched to the worker that registered during its takeover (messages: ${late.join(', ') || 'none'})`,
  )
})
