/**
 * A job store that stops answering (a stalled NATS link) must not hang an API request: every store
 * call on a request path — the idempotency claim, the read of an existing job, the batch publish,
 * the listing — is bounded, and the request answers 503 with Retry-After within ~5 s.
 * ClusterJobService on fakes (test/api/cluster-service-fakes.ts) behind the real HTTP layer.
 */
import t from 'tap'
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { buildApp } from '../../api/app.js'
import { silentLogger } from '../../runner/logger.js'
import { clusterService, type StoreMethod } from './cluster-service-fakes.js'
import { errorShape } from './helpers.js'
import { FakeClusterEvents } from './fake-events.js'

/** The API's store deadline is 5 s; allow for a loaded machine, but far less than "never". */
const ANSWER_WITHIN_MS = 8000
/** Past this the request counts as hung (the test reports it instead of waiting for tap's timeout). */
const HUNG_MS = 15_000

interface Case {
  name: string
  hang: StoreMethod
  /** Calls of the hanging method that still answer. */
  after?: number
  /** Jobs stored before the request (by id). */
  seed?: { key: string; id: string }
  request: InjectOptions
  /** Expected status (503 unless the request may answer from what it already read). */
  status: number
}

const post = (url: string, body: unknown): InjectOptions => ({ method: 'POST', url, payload: body as object })

const cases: Case[] = [
  {
    name: 'submit: idempotency claim stalls',
    hang: 'claim',
    request: post('/jobs', { function: 'echo', idempotencyKey: 'k1' }),
    status: 503,
  },
  {
    name: 'submit: read of the job a claimed key names stalls',
    hang: 'get',
    seed: { key: 'k2', id: '01J00000000000000000000002-000' },
    request: post('/jobs', { function: 'echo', idempotencyKey: 'k2' }),
    status: 503,
  },
  {
    name: 'submit: the batch publish stalls',
    hang: 'publish',
    request: post('/jobs', { function: 'echo' }),
    status: 503,
  },
  {
    name: 'batch: idempotency claim stalls',
    hang: 'claim',
    request: post('/jobs/batch', { jobs: [{ function: 'echo' }, { function: 'echo', idempotencyKey: 'k3' }] }),
    status: 503,
  },
  {
    name: 'batch: the batch publish stalls',
    hang: 'publish',
    request: post('/jobs/batch', { jobs: [{ function: 'echo' }] }),
    status: 503,
  },
  {
    name: 'submit ?wait of an existing job: the re-read after subscribing stalls (answers what it read)',
    hang: 'get',
    after: 1,
    seed: { key: 'k4', id: '01J00000000000000000000004-000' },
    request: post('/jobs?wait=200', { function: 'echo', idempotencyKey: 'k4' }),
    status: 202,
  },
  {
    name: 'GET /jobs/:id: read stalls',
    hang: 'get',
    request: { method: 'GET', url: '/jobs/01J00000000000000000000009-000' },
    status: 503,
  },
  {
    name: 'GET /jobs: the store listing stalls',
    hang: 'list',
    request: { method: 'GET', url: '/jobs' },
    status: 503,
  },
]

async function run(c: Case): Promise<{ res: LightMyRequestResponse | undefined; ms: number }> {
  const { service, store } = clusterService()
  if (c.seed) {
    store.claims.set(c.seed.key, { jobId: c.seed.id, claimedAt: new Date().toISOString(), seq: 1 })
    const createdAt = new Date().toISOString()
    store.jobs.set(c.seed.id, {
      id: c.seed.id,
      function: 'echo',
      state: 'queued',
      attempts: 0,
      maxAttempts: 3,
      payload: null,
      priority: 0,
      timeoutMs: 1000,
      createdAt,
      epoch: 0,
      idempotencyKey: c.seed.key,
    })
  }
  store.hang.add(c.hang)
  if (c.after !== undefined) store.hangAfter[c.hang] = c.after
  const app = buildApp({ service, events: new FakeClusterEvents(), logger: silentLogger() })
  await app.ready()
  const t0 = Date.now()
  let timer: NodeJS.Timeout | undefined
  const hung = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), HUNG_MS)))
  const res = await Promise.race([app.inject(c.request), hung])
  clearTimeout(timer)
  const ms = Date.now() - t0
  // A hung request would keep close() waiting: do not await it then.
  if (res) await app.close()
  else void app.close()
  return { res, ms }
}

t.test('a stalled job store: every request path answers within the store deadline', async (t) => {
  // Concurrently: each case waits out the 5 s deadline.
  const results = await Promise.all(cases.map(async (c) => ({ c, ...(await run(c)) })))
  for (const { c, res, ms } of results) {
    t.ok(res, `${c.name}: answered (not hung for ${HUNG_MS} ms)`)
    if (!res) continue
    t.ok(ms < ANSWER_WITHIN_MS, `${c.name}: answered in ${ms} ms`)
    t.equal(res.statusCode, c.status, `${c.name}: ${res.statusCode} ${res.body.slice(0, 120)}`)
    if (c.status === 503) {
      t.equal(errorShape(res).code, 'BOSUN_ERR_STORE', `${c.name}: a store error`)
      t.ok(Number(res.headers['retry-after']) >= 1, `${c.name}: with Retry-After`)
    } else {
      t.equal(res.json().id, c.seed?.id, `${c.name}: the existing job`)
    }
  }
})
