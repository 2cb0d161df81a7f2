/**
 * Garbage in bosun's shared state, written by a stranger with no credentials (the servers run
 * without auth here): extra znodes with non-JSON or wrong-shape data under services/worker, nodes
 * and elections/boss; garbage bytes and wrong-shape envelopes on the processes' NATS addresses and
 * on the event subjects; garbage values in the job bucket, and job records that break the API's Job
 * schema in one field (no payload, a time that is not ISO-8601, an error without a message). The
 * cluster must keep working (jobs submitted afterwards succeed), every process must stay alive, and
 * the garbage must be logged. (Two cases destructive enough to need clusters of their own are in
 * garbage-destructive.test.ts.)
 */
import { connect as natsConnect } from '@nats-io/transport-node'
import { jetstream } from '@nats-io/jetstream'
import zookeeper from 'node-zookeeper-client'
import t, { type Test } from 'tap'
import { TestCluster } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import {
  deadProcesses,
  enc,
  GARBAGE,
  healthProblem,
  SESSION_TIMEOUT_MS,
  startCluster,
  warnings,
  zk,
  zkRaw,
} from './helpers.js'

const zkServer = await startZooKeeper()
const nats = await startNats()
const name = uniqueName('garb')
const cluster = new TestCluster({
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  zk: zkServer,
  nats,
  cluster: name,
  workers: 3,
  concurrency: 4,
})
const raw = await zkRaw(zkServer.connect)
const nc = await natsConnect({ servers: nats.url })
t.teardown(async () => {
  zk.close(raw)
  await nc.close().catch(() => undefined)
  await cluster.close()
  await nats.close()
  await zkServer.close()
})
await startCluster(cluster)

async function assertWorking(t: Test, what: string): Promise<void> {
  t.equal(await healthProblem(cluster, 30_000), undefined, `${what}: the cluster still runs jobs`)
  t.same(deadProcesses(cluster), [], `${what}: no process exited`)
}

t.test(
  'garbage znodes under services/worker, nodes and elections/boss (higher sequence) are skipped with a warning',
  async (t) => {
    const before = await cluster.clusterState()
    for (const [kind, data] of Object.entries(GARBAGE)) {
      t.equal(await zk.create(raw, `/${name}/services/worker/garbage-${kind}`, data), 'OK')
      t.equal(await zk.create(raw, `/${name}/nodes/garbage-${kind}`, data), 'OK')
    }
    t.equal(await zk.create(raw, `/${name}/nodes/garbage-parent`, enc('x')), 'OK')
    t.equal(await zk.create(raw, `/${name}/nodes/garbage-parent/child`, enc('y')), 'OK')
    t.equal(await zk.create(raw, `/${name}/services/garbage-service`, enc('z')), 'OK')
    // Election nodes that sort AFTER every real candidate, and names that are not election nodes.
    t.equal(await zk.create(raw, `/${name}/elections/boss/garbage-n_9999999999`, GARBAGE.text!), 'OK')
    t.equal(await zk.create(raw, `/${name}/elections/boss/not-an-election-node`, GARBAGE.text!), 'OK')
    t.equal(await zk.create(raw, `/${name}/elections/garbage-election`, GARBAGE.text!), 'OK')

    await waitFor(() => warnings(cluster, /ignoring invalid data/).length > 0, {
      timeoutMs: 20_000,
      what: 'a warning about the garbage',
    })
    const after = await cluster.clusterState()
    t.same(
      after.workers.map((w) => w.id),
      before.workers.map((w) => w.id),
      'GET /cluster lists the same workers, no garbage',
    )
    t.equal(after.boss?.id, before.boss?.id, 'the same boss')
    t.equal(after.boss?.epoch, before.boss?.epoch, 'with the same epoch')
    await assertWorking(t, 'znode garbage')
    // Many jobs still spread over the real workers.
    const jobs = await Promise.all(
      Array.from({ length: 20 }, (_, i) => cluster.post('/jobs?wait=15000', { function: 'echo', payload: i })),
    )
    t.same(
      jobs.map((j) => j.body?.state),
      Array(20).fill('succeeded'),
      '20 jobs succeed',
    )
  },
)

t.test('a well-formed registration with nobody behind its address does not lose jobs', async (t) => {
  const ghost = (id: string) =>
    enc(
      JSON.stringify({
        v: 1,
        id,
        address: `bosun.${name}.proc.${id}`,
        host: 'nowhere',
        pid: 1,
        meta: { role: 'worker', functions: ['echo'], capacity: 1000 },
        registeredAt: new Date().toISOString(),
      }),
    )
  t.equal(await zk.create(raw, `/${name}/services/worker/ghost`, ghost('ghost'), zookeeper.CreateMode.EPHEMERAL), 'OK')
  t.equal(await zk.create(raw, `/${name}/nodes/ghost`, ghost('ghost'), zookeeper.CreateMode.EPHEMERAL), 'OK')
  await waitFor(async () => (await cluster.clusterState()).workers.some((w) => w.id === 'ghost'), {
    timeoutMs: 20_000,
    what: 'the ghost listed',
  })
  const ids = await Promise.all(
    Array.from(
      { length: 30 },
      async (_, i) => (await cluster.post('/jobs', { function: 'echo', payload: i })).body.id as string,
    ),
  )
  const final = await Promise.all(
    ids.map((id) => cluster.waitJob(id, 45_000).catch((err: Error) => ({ state: err.message }))),
  )
  t.same(
    final.map((j: any) => j.state),
    Array(30).fill('succeeded'),
    'every job succeeds on a real worker',
  )
  t.notOk(
    final.some((j: any) => j.worker === 'ghost'),
    'none is recorded as run by the ghost',
  )
  t.equal(await zk.remove(raw, `/${name}/services/worker/ghost`), 'OK')
  t.equal(await zk.remove(raw, `/${name}/nodes/ghost`), 'OK')
  await assertWorking(t, 'ghost worker')
})

/** Envelopes no handler should act on. */
function garbageMessages(): (Uint8Array | string)[] {
  const env = (type: string, body: unknown, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ v: 1, type, from: 'bosun.x.proc.stranger', body, ...extra })
  return [
    new Uint8Array([0xff, 0xfe, 0xfd]),
    new Uint8Array(0),
    'not json',
    'null',
    '[]',
    '{}',
    '{"v":1}',
    '{"v":2,"type":"job.dispatch","from":"x","body":{}}',
    env('nope', null),
    env('reply', { ok: true }),
    env('x'.repeat(10_000), null),
    env('job.dispatch', 'jobs'),
    env('job.dispatch', { epoch: 'one', jobs: {} }),
    env('job.dispatch', { epoch: -1, jobs: [] }),
    env('job.dispatch', { epoch: 1.5, jobs: [] }),
    env('job.cancel', { epoch: null, jobId: 7 }),
    env('worker.inventory', null),
    env('worker.status', 'please'),
    env('job.results', { results: [1, null, { jobId: 5 }, { jobId: 'x', attempt: 'y', worker: [], outcome: 'z' }] }),
    env('job.results', { results: 'all done' }),
    env('boss.cancel', { id: { $gt: '' } }),
    env('boss.cancel', null),
    env('boss.list', { limit: -1, state: {}, function: ['x'] }),
    env('boss.list', { limit: 1e308 }),
    env('boss.status', [1, 2, 3]),
    env('job.dispatch', null, { epoch: 'x' }),
    'x'.repeat(900 * 1024),
  ]
}

t.test("garbage on the boss's and a worker's NATS address is dropped; requests get an error reply", async (t) => {
  const state = await cluster.clusterState()
  const targets = [`bosun.${name}.proc.${state.boss!.id}`, `bosun.${name}.proc.${state.workers[0]!.id}`]
  const unanswered: string[] = []
  for (const subject of targets) {
    for (const msg of garbageMessages()) {
      nc.publish(subject, msg)
      try {
        const reply = await nc.request(subject, msg, { timeout: 5000 })
        const text = new TextDecoder().decode(reply.data)
        if (!text.includes('"type":"reply"')) unanswered.push(`${subject}: odd reply ${text.slice(0, 80)}`)
      } catch (err) {
        unanswered.push(`${subject} ${String(msg).slice(0, 60)}: ${(err as Error).message}`)
      }
    }
  }
  t.same(unanswered, [], 'every request got a reply (an error reply for garbage), none hung')
  await waitFor(() => warnings(cluster, /dropped malformed message/).length > 0, {
    timeoutMs: 10_000,
    what: 'a warning',
  })
  const now = await cluster.clusterState()
  t.equal(now.boss?.id, state.boss?.id, 'the boss did not change')
  t.equal(now.boss?.epoch, state.boss?.epoch, 'nor its epoch')
  await assertWorking(t, 'NATS garbage')
})

t.test('garbage on the event subjects is ignored', async (t) => {
  const subjects = [
    `bosun.${name}.events.boss`,
    `bosun.${name}.events.job.01ARZ3NDEKTSV4RRFFQ69G5FAV`,
    `bosun.${name}.events.job.x.y`,
    `bosun.${name}.events.anything`,
  ]
  const env = (body: unknown) => JSON.stringify({ v: 1, type: 'boss.stats', from: 'bosun.x.proc.stranger', body })
  for (const subject of subjects) {
    for (const msg of [
      ...garbageMessages(),
      env({ queued: 'lots' }),
      env({ queued: -5 }),
      env({ queued: null }),
      env({ epoch: 'x' }),
    ])
      nc.publish(subject, msg)
  }
  await nc.flush()
  await assertWorking(t, 'event garbage')
  // A burst of submits is not refused because of garbage "load reports".
  const codes = await Promise.all(
    Array.from({ length: 10 }, () => cluster.post('/jobs', { function: 'noop' }).then((r) => r.status)),
  )
  t.same(codes, Array(10).fill(202), 'submits are accepted')
})

t.test('wrong-shape "jobs finished" notices during ?wait do not produce a 5xx or a forged answer', async (t) => {
  const key = uniqueName('idem')
  const first = await cluster.post('/jobs', { function: 'sleep', payload: { ms: 3000 }, idempotencyKey: key })
  t.equal(first.status, 202)
  const id = first.body.id as string
  const subject = `bosun.${name}.events.finished`
  const forged = [
    { v: 1, type: 'jobs.finished', from: 'bosun.x.proc.stranger', body: { state: 'succeeded' } },
    {
      v: 1,
      type: 'jobs.finished',
      from: 'bosun.x.proc.stranger',
      body: { jobs: [{ id, state: 'succeeded', result: 'FORGED' }] },
    },
    {
      v: 1,
      type: 'jobs.finished',
      from: 'bosun.x.proc.stranger',
      body: { jobs: [{ id: 42, state: 'failed' }, 'x', null] },
    },
    { v: 1, type: 'job.finished', from: 'bosun.x.proc.stranger', body: { id, state: 'succeeded', result: 'FORGED' } },
    'not json at all',
  ]
  let publishing = true
  const publisher = (async () => {
    for (let i = 0; publishing; i++) {
      const f = forged[i % forged.length]
      nc.publish(subject, typeof f === 'string' ? f : JSON.stringify(f))
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  // Same idempotency key: the API waits on the existing job's finished event.
  const waited = await cluster.post('/jobs?wait=15000', {
    function: 'sleep',
    payload: { ms: 3000 },
    idempotencyKey: key,
  })
  publishing = false
  await publisher
  t.ok(waited.status < 500, `answered ${waited.status} ${waited.body?.code ?? ''}`)
  t.equal(waited.body?.id, id, 'the answer is the real job')
  t.not(waited.body?.result, 'FORGED', 'not a forged result')
  t.not(waited.body?.error, 'FORGED', 'not a forged error')
  const real = await cluster.waitJob(id, 30_000)
  t.equal(real.state, 'succeeded', 'the job itself succeeds')
  if (waited.status === 200) t.same(waited.body, real, 'a 200 answer is the stored job')
  await assertWorking(t, 'forged finished event')
})

t.test(
  "final records that break the API's Job schema are no jobs: 404, left out of listings (never 500)",
  async (t) => {
    const js = jetstream(nc)
    const now = new Date().toISOString()
    const valid = (id: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      id,
      function: 'echo',
      state: 'succeeded',
      attempts: 1,
      maxAttempts: 1,
      payload: 1,
      result: 1,
      priority: 0,
      timeoutMs: 1000,
      createdAt: now,
      startedAt: now,
      finishedAt: now,
      epoch: 1,
      worker: 'w1',
      ...extra,
    })
    const withoutPayload = valid('01ZZZZZZZZ00000000000000A1-000')
    delete withoutPayload.payload
    const bad: { id: string; what: string; record: Record<string, unknown> }[] = [
      { id: '01ZZZZZZZZ00000000000000A1-000', what: 'no payload', record: withoutPayload },
      { id: '01ZZZZZZZZ00000000000000A2-000', what: 'finishedAt: 0', record: { finishedAt: 0 } },
      { id: '01ZZZZZZZZ00000000000000A3-000', what: 'finishedAt not ISO', record: { finishedAt: 'yesterday' } },
      { id: '01ZZZZZZZZ00000000000000A4-000', what: 'error a string', record: { state: 'failed', error: 'boom' } },
      {
        id: '01ZZZZZZZZ00000000000000A5-000',
        what: 'error without message',
        record: { state: 'failed', error: { code: 'X' } },
      },
    ]
    for (const b of bad) {
      const record = b.record === withoutPayload ? withoutPayload : valid(b.id, b.record)
      await js.publish(`bosun.${name}.done.${b.id}`, enc(JSON.stringify(record)))
    }
    // A valid record written after them, and an index entry naming them all (the listing reads it).
    const sentinel = '01ZZZZZZZZ00000000000000B0-000'
    await js.publish(`bosun.${name}.done.${sentinel}`, enc(JSON.stringify(valid(sentinel))))
    const ids = [...bad.map((b) => b.id), sentinel]
    await js.publish(`bosun.${name}.idx.succeeded.echo`, enc(JSON.stringify({ v: 1, ids })))
    await js.publish(`bosun.${name}.idx.failed.echo`, enc(JSON.stringify({ v: 1, ids })))
    t.equal((await cluster.get(`/jobs/${sentinel}`)).status, 200, 'the valid record is readable')
    for (const { id, what } of bad) {
      const r = await cluster.get(`/jobs/${id}`)
      t.equal(r.status, 404, `GET /jobs/${id} (${what}) → 404, got ${r.status} ${r.body?.code ?? ''}`)
    }
    const badIds = new Set(bad.map((b) => b.id))
    for (const query of ['limit=1000', 'state=succeeded&limit=1000', 'state=failed&limit=1000', 'function=echo']) {
      const r = await cluster.get(`/jobs?${query}`)
      t.equal(r.status, 200, `GET /jobs?${query} → 200, got ${r.status} ${r.body?.code ?? ''}`)
      const listed = (r.body?.jobs ?? []).map((j: { id: string }) => j.id)
      t.same(
        listed.filter((id: string) => badIds.has(id)),
        [],
        `GET /jobs?${query} leaves them out`,
      )
    }
    await assertWorking(t, 'schema-breaking final records')
  },
)

t.test('garbage in every job stream: skipped with a warning, also by a new boss that loads the store', async (t) => {
  const js = jetstream(nc)
  const p = `bosun.${name}`
  const put: [string, Uint8Array][] = [
    [`${p}.sub.garbage`, enc('not json')],
    [`${p}.sub.01ARZ3NDEKTSV4RRFFQ69G5FAV`, enc('{"v":1,"batch":"01ARZ3NDEKTSV4RRFFQ69G5FAV","jobs":"exploded"}')],
    [`${p}.sub.01ARZ3NDEKTSV4RRFFQ69G5FAW`, new Uint8Array([0xff, 0x00, 0xfe])],
    [`${p}.sub.01ARZ3NDEKTSV4RRFFQ69G5FAX`, enc('null')],
    [
      `${p}.sub.01ARZ3NDEKTSV4RRFFQ69G5FAY`,
      enc(JSON.stringify({ v: 1, batch: 'someone-else', createdAt: new Date().toISOString(), jobs: [] })),
    ],
    [`${p}.state.01ARZ3NDEKTSV4RRFFQ69G5FAZ`, enc('{"v":1,"epoch":"x"}')],
    [`${p}.done.01ARZ3NDEKTSV4RRFFQ69G5FAV-000`, enc('[]')],
    [`${p}.idx.succeeded.echo`, enc('{"ids":7}')],
    [`${p}.idem.garbage`, enc('{"not":"a claim"}')],
  ]
  for (const [k, v] of put) await js.publish(k, v)
  await waitFor(() => warnings(cluster, /garbage in the job store/).length > 0, {
    timeoutMs: 20_000,
    what: 'a warning about the store',
  })
  for (const id of [
    'garbage',
    '01ARZ3NDEKTSV4RRFFQ69G5FAV-000',
    '01ARZ3NDEKTSV4RRFFQ69G5FAW-000',
    '01ARZ3NDEKTSV4RRFFQ69G5FAX-000',
    '01ARZ3NDEKTSV4RRFFQ69G5FAY-000',
  ]) {
    const r = await cluster.get(`/jobs/${id}`)
    t.equal(r.status, 404, `GET /jobs/${id} → 404 (garbage is no job)`)
  }
  const list = await cluster.get('/jobs?limit=1000')
  t.equal(list.status, 200, 'GET /jobs still answers')
  t.notOk(
    list.body.jobs.some((j: { id: string }) => j.id.startsWith('01ARZ3NDEKTSV4RRFFQ69G5FA')),
    'no garbage listed',
  )
  await assertWorking(t, 'store garbage')

  // A new boss reads every open batch at election: kill the boss and make sure it copes.
  const boss = await cluster.bossProcess()
  const oldEpoch = (await cluster.clusterState()).boss!.epoch
  await boss.kill()
  cluster.workers.splice(cluster.workers.indexOf(boss), 1)
  const next = await waitFor(
    async () => {
      const s = await cluster.clusterState()
      return s.boss && s.boss.epoch > oldEpoch ? s.boss : undefined
    },
    { timeoutMs: 60_000, what: 'a new boss' },
  )
  t.ok(next.epoch > oldEpoch, 'a new boss took over')
  await assertWorking(t, 'new boss over store garbage')
})
