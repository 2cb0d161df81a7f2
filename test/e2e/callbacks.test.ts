/**
 * Completion callbacks on a real cluster (ZooKeeper, NATS, an API, workers) with a real local HTTP
 * receiver: succeeded and failed jobs are POSTed as GET /jobs/:id answers them, signed; 500s are
 * retried until a 200; a receiver that was down is reached once it is up; a redirect is not
 * followed; a host outside BOSUN_CALLBACK_ALLOW is a 400 at submit (single and batch) and nothing
 * is stored; and a kill -9 of the boss while callback jobs finish loses none and sends few twice.
 */
import t, { type Test } from 'tap'
import { freePort, startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { CallbackReceiver } from '../helpers/callback-receiver.js'

const SECRET = 'test-secret-0123456789abcdef'
const zk = await startZooKeeper()
const nats = await startNats()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

const env = {
  BOSUN_CALLBACK_ALLOW: '127.0.0.1',
  BOSUN_CALLBACK_SECRET: SECRET,
  BOSUN_CALLBACK_TIMEOUT_MS: '2000',
  BOSUN_CALLBACK_BACKOFF_MS: '100',
  BOSUN_CALLBACK_BACKOFF_MAX_MS: '400',
}

async function cluster(t: Test, workers: number): Promise<TestCluster> {
  const c = new TestCluster({
    zk,
    nats,
    cluster: uniqueName('cb'),
    workers,
    functionsDir: e2eFunctionsDir(),
    sessionTimeoutMs: 2000,
    env,
  })
  t.teardown(() => c.close())
  await c.start()
  return c
}

async function receiver(t: Test, port?: number): Promise<{ r: CallbackReceiver; base: string }> {
  const r = new CallbackReceiver(SECRET)
  const p = port ?? (await freePort())
  await r.listen(p)
  t.teardown(() => r.close())
  return { r, base: `http://127.0.0.1:${p}` }
}

/** GET /jobs/:id until its callback is in `state`. */
async function callbackState(c: TestCluster, id: string, state: string, timeoutMs = 30_000): Promise<any> {
  return waitFor(
    async () => {
      const job = (await c.get(`/jobs/${id}`)).body
      return job?.callback?.state === state ? job : undefined
    },
    { timeoutMs, intervalMs: 100, what: `callback of ${id} ${state}` },
  )
}

t.test('delivery, retries, a receiver that comes back, redirects, refused hosts', async (t) => {
  const c = await cluster(t, 3)
  const { r, base } = await receiver(t)

  t.test('a succeeded and a failed job are POSTed as GET answers them, signed', async (t) => {
    const ok = await c.post('/jobs', { function: 'echo', payload: { hi: 1 }, callbackUrl: `${base}/ok` })
    t.equal(ok.status, 202)
    t.equal(ok.body.callbackUrl, `${base}/ok`)
    const bad = await c.post('/jobs', { function: 'fail', payload: { message: 'boom' }, callbackUrl: `${base}/ok` })
    for (const [id, state] of [
      [ok.body.id as string, 'succeeded'],
      [bad.body.id as string, 'failed'],
    ] as const) {
      const job = await callbackState(c, id, 'delivered')
      t.same(job.callback, { state: 'delivered', attempts: 1, lastStatus: 200 }, `${state}: delivered once`)
      const got = r.of(id)
      t.equal(got.length, 1, `${state}: one POST`)
      const { callback: _c, ...publicJob } = job
      t.same(got[0]!.body, publicJob, `${state}: the body is the job as GET /jobs/:id shows it`)
      t.equal(got[0]!.body.state, state)
      t.ok(got[0]!.signed, `${state}: X-Bosun-Signature verifies with the secret`)
      t.equal(got[0]!.deliveryId, `${id}.0`)
      t.equal(got[0]!.attempt, 1)
    }
  })

  t.test('500 twice, then 200: delivered on the third attempt', async (t) => {
    const { body } = await c.post('/jobs', { function: 'echo', callbackUrl: `${base}/flaky` })
    const job = await callbackState(c, body.id, 'delivered')
    t.same(job.callback, { state: 'delivered', attempts: 3, lastStatus: 200 })
    t.same(
      r.of(body.id).map((d) => d.attempt),
      [1, 2, 3],
      'three POSTs, numbered',
    )
    t.equal(new Set(r.of(body.id).map((d) => d.deliveryId)).size, 1, 'one delivery id across the retries')
  })

  t.test('a receiver that is down is reached once it is up', async (t) => {
    const port = await freePort()
    const { body } = await c.post('/jobs', { function: 'echo', callbackUrl: `http://127.0.0.1:${port}/ok` })
    const pending = await waitFor(
      async () => {
        const job = (await c.get(`/jobs/${body.id}`)).body
        return job?.callback?.attempts >= 2 ? job : undefined
      },
      { timeoutMs: 30_000, what: 'two failed attempts' },
    )
    t.equal(pending.callback.state, 'pending')
    t.match(pending.callback.lastError, /ECONNREFUSED/, 'the connection error is shown')
    const late = await receiver(t, port)
    const job = await callbackState(c, body.id, 'delivered')
    t.equal(job.callback.lastStatus, 200)
    t.equal(late.r.of(body.id).length, 1, 'delivered once the receiver listens')
  })

  t.test("a retried job calls back for its new run; the old run's pending delivery is dropped", async (t) => {
    const port = await freePort()
    const { body } = await c.post('/jobs', { function: 'fail', callbackUrl: `http://127.0.0.1:${port}/ok` })
    await waitFor(async () => (await c.get(`/jobs/${body.id}`)).body?.callback?.attempts >= 1, {
      timeoutMs: 30_000,
      what: 'a failed delivery attempt of run 0',
    })
    const retried = await c.post(`/jobs/${body.id}/retry`, {})
    t.equal(retried.status, 202)
    await waitFor(
      async () => {
        const j = (await c.get(`/jobs/${body.id}`)).body
        return j?.run === 1 && j.state === 'failed'
      },
      { timeoutMs: 30_000, what: 'run 1 failed' },
    )
    const late = await receiver(t, port)
    const job = await callbackState(c, body.id, 'delivered')
    t.equal(job.run, 1)
    const got = late.r.of(body.id)
    t.ok(got.length >= 1, 'delivered')
    t.same(new Set(got.map((d) => d.deliveryId)), new Set([`${body.id}.1`]), "only run 1's delivery id")
    t.equal(got.at(-1)!.body.run, 1, 'the body is run 1')
  })

  t.test('a redirect is not followed: an attempt that failed', async (t) => {
    const { body } = await c.post('/jobs', { function: 'echo', callbackUrl: `${base}/redirect` })
    const job = await waitFor(
      async () => {
        const j = (await c.get(`/jobs/${body.id}`)).body
        return j?.callback?.attempts >= 2 ? j : undefined
      },
      { timeoutMs: 30_000, what: 'two attempts' },
    )
    t.equal(job.callback.state, 'pending')
    t.equal(job.callback.lastStatus, 302)
    t.ok(
      r.of(body.id).every((d) => d.path === '/redirect'),
      'the redirect target was never called',
    )
  })

  t.test('a host outside the allow list is a 400 at submit, and nothing is stored', async (t) => {
    const before = (await c.get('/jobs?limit=1000')).body.jobs.length
    for (const url of ['http://example.com/hook', 'ftp://127.0.0.1/x', 'http://u:p@127.0.0.1/x', 'not a url']) {
      const res = await c.post('/jobs', { function: 'echo', callbackUrl: url })
      t.equal(res.status, 400, url)
      t.equal(res.body.code, 'BOSUN_ERR_VALIDATION')
      t.equal(res.body.details.field, 'body.callbackUrl')
      t.match(res.body.message, /callbackUrl/)
    }
    const batch = await c.post('/jobs/batch', {
      jobs: [
        { function: 'echo', callbackUrl: `${base}/ok` },
        { function: 'echo', callbackUrl: 'https://evil.example/x' },
      ],
    })
    t.equal(batch.status, 400)
    t.equal(batch.body.details.index, 1)
    t.match(batch.body.message, /jobs\[1\].*callbackUrl.*evil\.example.*BOSUN_CALLBACK_ALLOW/)
    t.equal((await c.get('/jobs?limit=1000')).body.jobs.length, before, 'no job stored')
  })
})

t.test('kill -9 of the boss while callback jobs finish: each delivered, few twice', async (t) => {
  const c = await cluster(t, 4)
  const { r, base } = await receiver(t)
  const ids: string[] = []
  const submit = async (n: number) => {
    const jobs = Array.from({ length: n }, (_, i) => ({
      function: 'sleep',
      payload: { ms: 100 + ((i * 37) % 400) },
      callbackUrl: `${base}/ok`,
    }))
    const res = await c.post('/jobs/batch', { jobs })
    t.equal(res.status, 202)
    ids.push(...(res.body.jobs as Array<{ id: string }>).map((j) => j.id))
  }
  for (let i = 0; i < 5; i++) {
    await submit(10)
    await new Promise((res) => setTimeout(res, 250))
  }
  const boss = await c.bossProcess()
  await boss.kill()
  for (let i = 0; i < 3; i++) {
    await submit(10).catch(() => undefined) // 503 while no boss is elected: those jobs are not ours
    await new Promise((res) => setTimeout(res, 500))
  }
  await waitFor(() => ids.every((id) => r.of(id).length > 0), {
    timeoutMs: 90_000,
    intervalMs: 200,
    what: `every job's callback (${ids.length} jobs)`,
  })
  const counts = ids.map((id) => r.of(id).length)
  const duplicates = counts.reduce((a, n) => a + n - 1, 0)
  t.ok(ids.length >= 50, `${ids.length} jobs`)
  t.ok(Math.max(...counts) <= 3, `no job delivered more than 3 times (max ${Math.max(...counts)})`)
  t.ok(duplicates <= 20, `few duplicates: ${duplicates} extra POSTs for ${ids.length} jobs`)
  t.ok(
    r.deliveries.every((d) => d.signed && d.deliveryId === `${d.jobId}.0`),
    'every POST signed, one delivery id per job',
  )
  await waitFor(
    async () => {
      const states = await Promise.all(ids.map(async (id) => (await c.get(`/jobs/${id}`)).body.callback?.state))
      return states.every((s) => s === 'delivered')
    },
    { timeoutMs: 10_000, what: 'GET shows every callback delivered' },
  )
  t.pass('GET shows every callback delivered')
})
