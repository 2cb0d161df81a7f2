/**
 * Bearer-token auth and per-client rate limits on a real cluster (API process started with
 * BOSUN_API_TOKENS and API_RATE_LIMIT_PER_MIN): job routes and /cluster answer 401 without or with a
 * wrong token and work with a right one; /healthz and /readyz stay open; past the limit a client gets
 * 429 with Retry-After while another client is still served.
 */
import t from 'tap'
import { TestCluster, type ClusterState } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { deadProcesses, healthProblem, SESSION_TIMEOUT_MS, startCluster } from '../hostile/helpers.js'

const TOKEN_A = 'tokenAAAAAAAAAAAAAAAAAAAA'
const TOKEN_B = 'tokenBBBBBBBBBBBBBBBBBBBB'
const TOKEN_C = 'tokenCCCCCCCCCCCCCCCCCCCC'
const RATE_LIMIT = 5

/** A TestCluster whose own requests (readiness, posts, reads) carry a bearer token. */
class AuthedCluster extends TestCluster {
  constructor(
    opts: ConstructorParameters<typeof TestCluster>[0],
    private readonly token: string,
  ) {
    super(opts)
  }
  private auth(): Record<string, string> {
    return { authorization: `Bearer ${this.token}` }
  }
  override async clusterState(): Promise<ClusterState> {
    const res = await fetch(`${this.apiUrl}/cluster`, { headers: this.auth() })
    return (await res.json()) as ClusterState
  }
  override post(path: string, body: unknown, headers: Record<string, string> = {}) {
    return super.post(path, body, { ...this.auth(), ...headers })
  }
  override async get(path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(this.apiUrl + path, { headers: this.auth() })
    return { status: res.status, body: await res.json().catch(() => undefined) }
  }
  override async del(path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(this.apiUrl + path, { method: 'DELETE', headers: this.auth() })
    return { status: res.status, body: await res.json().catch(() => undefined) }
  }
}

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new AuthedCluster(
  {
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    zk,
    nats,
    cluster: uniqueName('auth'),
    workers: 2,
    env: { BOSUN_API_TOKENS: `${TOKEN_A},${TOKEN_B},${TOKEN_C}`, API_RATE_LIMIT_PER_MIN: String(RATE_LIMIT) },
  },
  TOKEN_A,
)
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await startCluster(cluster)

async function call(
  method: string,
  path: string,
  authorization: string | undefined,
  body?: unknown,
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = {}
  if (authorization !== undefined) headers.authorization = authorization
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(cluster.apiUrl + path, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  })
  return { status: res.status, body: await res.json().catch(() => undefined), headers: res.headers }
}

const WRONG: (string | undefined)[] = [
  undefined,
  '',
  'Bearer',
  'Bearer ',
  'Bearer wrongtokenwrongtoken',
  `Bearer ${TOKEN_A}x`,
  `Bearer ${TOKEN_A.slice(0, -1)}`,
  `Bearer ${TOKEN_A} ${TOKEN_B}`,
  `Basic ${Buffer.from(`user:${TOKEN_A}`).toString('base64')}`,
  `Token ${TOKEN_A}`,
  TOKEN_A,
  `Bearer\u00a0${TOKEN_A}`,
]

t.test('job routes and /cluster: 401 without or with a wrong token, before any validation', async (t) => {
  const job = await cluster.post('/jobs', { function: 'echo', payload: 'for the id' })
  t.equal(job.status, 202, 'a right token submits')
  const id = job.body.id as string
  const routes: [string, string, unknown?][] = [
    ['POST', '/jobs', { function: 'echo' }],
    ['POST', '/jobs', { not: 'even valid' }],
    ['POST', '/jobs/batch', { jobs: [{ function: 'echo' }] }],
    ['GET', `/jobs/${id}`],
    ['GET', '/jobs/unknown-id'],
    ['GET', '/jobs'],
    ['GET', '/jobs?limit=notanumber'],
    ['DELETE', `/jobs/${id}`],
    ['GET', '/cluster'],
  ]
  const wrongAnswers: string[] = []
  for (const [method, path, body] of routes) {
    for (const authorization of WRONG) {
      const r = await call(method, path, authorization, body)
      const ok =
        r.status === 401 &&
        r.body?.code === 'BOSUN_ERR_UNAUTHORIZED' &&
        /Bearer/.test(r.headers.get('www-authenticate') ?? '')
      if (!ok)
        wrongAnswers.push(`${method} ${path} with ${JSON.stringify(authorization)} → ${r.status} ${r.body?.code}`)
      if (r.status === 401 && JSON.stringify(r.body).includes(TOKEN_A))
        wrongAnswers.push(`${method} ${path}: a 401 echoes a token`)
    }
  }
  t.same(wrongAnswers, [], 'every request without a right token is a 401 with WWW-Authenticate: Bearer')
  const still = await cluster.get(`/jobs/${id}`)
  t.equal(still.status, 200)
  t.not(still.body.state, 'cancelled', 'the unauthenticated DELETEs cancelled nothing')
})

t.test('a right token (any of the configured ones) is accepted on every route', async (t) => {
  for (const token of [TOKEN_A, TOKEN_B, TOKEN_C]) {
    const auth = `Bearer ${token}`
    const lower = `bearer ${token}`
    t.equal((await call('GET', '/cluster', auth)).status, 200, `GET /cluster with token …${token.slice(-4)}`)
    t.equal((await call('GET', '/jobs?limit=5', lower)).status, 200, 'GET /jobs (scheme is case-insensitive)')
    t.equal(
      (await call('GET', '/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV', auth)).status,
      404,
      'GET /jobs/:id unknown → 404, not 401',
    )
  }
  const submitted = await call('POST', '/jobs?wait=10000', `Bearer ${TOKEN_C}`, { function: 'echo', payload: 'authed' })
  t.equal(submitted.status, 200)
  t.equal(submitted.body.result, 'authed')
  const deleted = await call('DELETE', `/jobs/${submitted.body.id}`, `Bearer ${TOKEN_C}`)
  t.equal(deleted.status, 200, 'DELETE of a finished job → 200 unchanged')
  const batch = await call('POST', '/jobs/batch', `Bearer ${TOKEN_C}`, {
    jobs: [{ function: 'noop' }, { function: 'noop' }],
  })
  t.equal(batch.status, 202)
})

t.test('/healthz and /readyz stay open (no token needed, a wrong one does not matter)', async (t) => {
  for (const path of ['/healthz', '/readyz']) {
    for (const authorization of [undefined, 'Bearer wrongtokenwrongtoken', `Bearer ${TOKEN_A}`]) {
      t.equal((await call('GET', path, authorization)).status, 200, `${path} with ${JSON.stringify(authorization)}`)
    }
  }
})

t.test(
  `past ${RATE_LIMIT} submits a minute a client gets 429 with Retry-After; other clients are not affected`,
  async (t) => {
    const statuses: number[] = []
    let limited: Awaited<ReturnType<typeof call>> | undefined
    for (let i = 0; i < RATE_LIMIT + 3; i++) {
      const r = await call('POST', '/jobs', `Bearer ${TOKEN_B}`, { function: 'noop', payload: i })
      statuses.push(r.status)
      if (r.status === 429) limited ??= r
    }
    t.same(statuses, [...Array(RATE_LIMIT).fill(202), 429, 429, 429], `token B: ${RATE_LIMIT} accepted, then refused`)
    t.equal(limited?.body?.code, 'BOSUN_ERR_RATE_LIMITED')
    const retryAfter = Number(limited?.headers.get('retry-after'))
    t.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After is ${retryAfter} s`)
    // Another client (token) still has its own budget; token B can still read.
    const other = await call('POST', '/jobs', `Bearer ${TOKEN_C}`, { function: 'noop' })
    t.equal(other.status, 202, 'token C is still accepted')
    t.equal((await call('GET', '/jobs?limit=1', `Bearer ${TOKEN_B}`)).status, 200, 'reads are not rate limited')
    // A refused submit stored nothing.
    const fromB = await waitFor(
      async () => {
        const listed = await cluster.get('/jobs?limit=1000')
        const found = listed.body.jobs.filter(
          (j: { function: string; payload: unknown }) => j.function === 'noop' && typeof j.payload === 'number',
        )
        return found.length >= RATE_LIMIT ? found : undefined
      },
      { timeoutMs: 20_000, what: 'the accepted jobs listed' },
    )
    t.equal(fromB.length, RATE_LIMIT, `only the ${RATE_LIMIT} accepted submits of token B exist`)
  },
)

t.test('the cluster works and nothing crashed', async (t) => {
  t.same(deadProcesses(cluster), [])
  t.equal(await healthProblem(cluster), undefined)
})
