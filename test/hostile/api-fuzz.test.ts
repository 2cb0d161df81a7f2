/**
 * Property-based fuzzing of every API route of a REAL cluster (API process + workers on real
 * ZooKeeper and nats-server): random JSON, wrong types, huge strings and numbers, deep nesting,
 * `__proto__` / `constructor` keys, invalid UTF-8, wrong or missing content types, oversized bodies,
 * random query strings and path ids.
 *
 * Invariants: never a 5xx; every error is in the `{ statusCode, code, message }` shape; nothing
 * changes except through an accepted submit (the job listing holds exactly the jobs that were
 * answered 2xx); no process dies and the cluster still runs jobs afterwards.
 * (test/api/fuzz.test.ts checks the HTTP layer's validation oracle against a fake service; this
 * file checks the whole system under the same kind of input.)
 */
import fc from 'fast-check'
import t from 'tap'
import { TestCluster } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import {
  deadProcesses,
  healthProblem,
  hostileFunctionsDir,
  rawRequest,
  SESSION_TIMEOUT_MS,
  startCluster,
} from './helpers.js'
import { bodyBytes, contentType, pathId, queryString, specish, submitQuery } from './api-arbitraries.js'

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  zk,
  nats,
  cluster: uniqueName('fuzz'),
  workers: 2,
  concurrency: 4,
  functionsDir: hostileFunctionsDir(),
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await startCluster(cluster)
const port = Number(new URL(cluster.apiUrl).port)

interface Answer {
  status: number
  body: any
  text: string
}

/** One request with fetch; the body is sent byte-exact (a Buffer never gets a content type added). */
async function send(
  method: string,
  path: string,
  body?: Buffer,
  contentType?: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const h: Record<string, string> = { ...headers }
  if (contentType !== undefined) h['content-type'] = contentType
  const res = await fetch(cluster.apiUrl + path, { method, headers: h, ...(body !== undefined ? { body } : {}) })
  const text = await res.text()
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    parsed = undefined
  }
  return { status: res.status, body: parsed, text }
}

/** Problems with one answer: a 5xx, or an error not in the error shape. */
function answerProblem(a: Answer, what: string): string | undefined {
  if (a.status >= 500) return `${what} → ${a.status} ${a.text.slice(0, 300)}`
  if (a.status >= 400) {
    const b = a.body
    if (!b || b.statusCode !== a.status || typeof b.code !== 'string' || typeof b.message !== 'string')
      return `${what} → ${a.status} not in the error shape: ${a.text.slice(0, 300)}`
  }
  return undefined
}

// ---- bookkeeping --------------------------------------------------------------------------------

const accepted = new Set<string>()
/** Problems of the running subtest (each subtest starts with an empty list). */
let problems: string[] = []
t.beforeEach(() => {
  problems = []
})

/** A short description of a body for failure messages (nesting depth and size instead of the text). */
function describeBody(body: Buffer): string {
  const text = body.toString('latin1')
  const nesting = (text.match(/\[|\{"a":/g) ?? []).length
  const depth = nesting > 50 ? ` nesting≈${nesting}` : ''
  return `${body.length} bytes${depth}: ${text.slice(0, 60)}`
}

/** Check an answer and remember the jobs it accepted (`submit`: it was POST /jobs or /jobs/batch). */
function record(a: Answer, what: string, submit = false): void {
  const p = answerProblem(a, what)
  if (p) problems.push(p)
  if (submit && (a.status === 200 || a.status === 202)) {
    if (typeof a.body?.id === 'string') accepted.add(a.body.id)
    if (Array.isArray(a.body?.jobs)) for (const j of a.body.jobs) if (typeof j?.id === 'string') accepted.add(j.id)
  }
}

/** All job ids the cluster lists, once a marker job submitted now is visible (the index caught up). */
async function listedIds(): Promise<Set<string>> {
  const marker = await cluster.post('/jobs', { function: 'noop', payload: 'marker' })
  if (marker.status !== 202) throw new Error(`marker job refused: ${marker.status}`)
  accepted.add(marker.body.id)
  return waitFor(
    async () => {
      const r = await cluster.get('/jobs?limit=1000')
      if (r.status !== 200) return undefined
      const ids = new Set<string>(r.body.jobs.map((j: { id: string }) => j.id))
      return ids.has(marker.body.id) ? ids : undefined
    },
    { timeoutMs: 20_000, what: 'marker job listed' },
  )
}

const baseline = await listedIds()

t.test('POST /jobs and /jobs/batch: random bodies, content types and queries never give a 5xx', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.boolean(), bodyBytes, contentType, submitQuery, async (batch, body, type, query) => {
      const what = `POST /jobs${batch ? '/batch' : ''}${query} [${type}] ${describeBody(body)}`
      const a = await send('POST', `/jobs${batch ? '/batch' : ''}${query}`, body, type)
      record(a, what, true)
    }),
    { numRuns: 120 },
  )
  t.same(problems, [], 'no 5xx, every error in the error shape')
})

t.test('only invalid submissions change nothing', async (t) => {
  const before = await listedIds()
  const invalid = fc.oneof(
    specish.map((s) => ({ body: JSON.stringify({ ...s, function: 'echo', unexpected: 1 }), type: 'application/json' })),
    specish.map((s) => ({ body: JSON.stringify({ ...s, function: 'nosuch' }), type: 'application/json' })),
    specish.map((s) => ({ body: JSON.stringify({ ...s, function: 'echo' }), type: 'text/plain' })),
    fc
      .constantFrom(
        '{"function":"echo"',
        '{"function":"echo","payload":{"__proto__":{}}}',
        '{"function":"echo","priority":1e400}',
      )
      .map((body) => ({ body, type: 'application/json' })),
  )
  let n = 0
  await fc.assert(
    fc.asyncProperty(fc.boolean(), invalid, async (batch, { body, type }) => {
      const text = batch ? `{"jobs":[{"function":"noop"},${body}]}` : body
      const a = await send('POST', batch ? '/jobs/batch' : '/jobs', Buffer.from(text), type)
      n++
      const p = answerProblem(a, `invalid ${describeBody(Buffer.from(text))}`)
      if (p) problems.push(p)
      if (a.status < 400) problems.push(`invalid input accepted: ${describeBody(Buffer.from(text))} → ${a.status}`)
    }),
    { numRuns: 80 },
  )
  const after = await listedIds()
  t.equal(n, 80)
  const added = [...after].filter((id) => !before.has(id))
  t.equal(added.length, 1, 'only the marker job was added')
  t.same(problems, [])
})

t.test('GET and DELETE /jobs/:id with random ids answer 4xx, never 5xx, and cancel nothing', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('GET', 'DELETE'),
      pathId,
      fc.option(fc.constantFrom('application/json', 'text/plain', ''), { nil: undefined }),
      async (method, id, type) => {
        const a = await send(method, `/jobs/${id}`, undefined, type)
        record(a, `${method} /jobs/${id.slice(0, 80)}`)
        if (a.status < 400) problems.push(`${method} /jobs/${id.slice(0, 80)} → ${a.status}`)
      },
    ),
    { numRuns: 80 },
  )
  t.same(problems, [])
})

t.test('GET /jobs with random query strings answers 200 or 400', async (t) => {
  await fc.assert(
    fc.asyncProperty(queryString, async (q) => {
      const a = await send('GET', `/jobs?${q}`)
      record(a, `GET /jobs?${q.slice(0, 80)}`)
      if (a.status !== 200 && a.status !== 400) problems.push(`GET /jobs?${q.slice(0, 80)} → ${a.status}`)
    }),
    { numRuns: 60 },
  )
  t.same(problems, [])
})

t.test('GET /cluster, /healthz, /readyz ignore random queries and headers', async (t) => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom('/cluster', '/healthz', '/readyz'),
      queryString,
      fc.dictionary(
        fc.constantFrom('accept', 'accept-encoding', 'x-forwarded-for', 'content-type', 'if-none-match', 'range'),
        fc.string({ maxLength: 30 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
        { maxKeys: 3 },
      ),
      async (route, q, headers) => {
        const a = await send('GET', `${route}?${q}`, undefined, undefined, headers)
        record(a, `GET ${route}?${q.slice(0, 60)} ${JSON.stringify(headers)}`)
        if (a.status !== 200) problems.push(`GET ${route}?${q.slice(0, 60)} ${JSON.stringify(headers)} → ${a.status}`)
      },
    ),
    { numRuns: 60 },
  )
  t.same(problems, [])
})

t.test('deeply nested payloads are accepted or refused with a 4xx, never a 5xx', async (t) => {
  for (const depth of [1000, 20_000, 100_000, 400_000]) {
    for (const [kind, open, close] of [
      ['array', '[', ']'],
      ['object', '{"a":', '}'],
    ] as const) {
      const payload = `${open.repeat(depth)}${kind === 'object' ? '1' : ''}${close.repeat(depth)}`
      for (const batch of [false, true]) {
        const text = batch
          ? `{"jobs":[{"function":"echo","payload":${payload}}]}`
          : `{"function":"echo","payload":${payload}}`
        const a = await send('POST', batch ? '/jobs/batch' : '/jobs', Buffer.from(text), 'application/json')
        const what = `${batch ? 'batch' : 'single'} ${kind} nesting ${depth} (${text.length} bytes)`
        record(a, what, true)
        t.ok(a.status < 500, `${what} → ${a.status} ${a.status >= 400 ? a.body?.code : ''}`)
      }
    }
  }
  t.same(problems, [])
})

t.test('other methods, oversized bodies, bad paths and bad headers: 4xx, never 5xx', async (t) => {
  const cases: [string, string, Buffer | undefined, string | undefined, Record<string, string>?][] = [
    ['PUT', '/jobs', Buffer.from('{}'), 'application/json'],
    ['PATCH', '/jobs/abc', Buffer.from('{}'), 'application/json'],
    ['DELETE', '/jobs', undefined, undefined],
    ['POST', '/cluster', Buffer.from('{}'), 'application/json'],
    ['POST', '/jobs', Buffer.alloc(1024 * 1024 + 1, 0x20), 'application/json'],
    [
      'POST',
      '/jobs',
      Buffer.from(JSON.stringify({ function: 'echo', payload: 'x'.repeat(2 * 1024 * 1024) })),
      'application/json',
    ],
    [
      'POST',
      '/jobs/batch',
      Buffer.from(JSON.stringify({ jobs: [{ function: 'echo', payload: 'y'.repeat(1024 * 1024) }] })),
      'application/json',
    ],
    ['GET', '/jobs/%E0%A4%A', undefined, undefined],
    ['GET', `/jobs/${'%41'.repeat(2000)}`, undefined, undefined],
    ['GET', '/nope', undefined, undefined],
    ['GET', '/jobs/abc/def', undefined, undefined],
    ['GET', '//jobs', undefined, undefined],
    ['GET', '/jobs?limit=1', undefined, undefined, { 'x-big': 'z'.repeat(8000) }],
  ]
  for (const [method, path, body, type, headers] of cases) {
    const a = await send(method, path, body, type, headers ?? {})
    record(a, `${method} ${path.slice(0, 60)}`, method === 'POST')
    t.ok(
      (a.status >= 400 && a.status < 500) || (a.status === 200 && method === 'GET' && path.startsWith('/jobs?')),
      `${method} ${path.slice(0, 40)} → ${a.status}`,
    )
  }
  // A Content-Encoding the API does not decode: Fastify ignores the header and reads the body as
  // sent. Any answer but a 5xx is acceptable here (an accepted job is counted like any other).
  for (const encoding of ['gzip', 'br, identity, x']) {
    const a = await send('POST', '/jobs', Buffer.from('{"function":"echo"}'), 'application/json', {
      'content-encoding': encoding,
    })
    record(a, `POST /jobs content-encoding: ${encoding}`, true)
    t.ok(a.status < 500, `content-encoding ${encoding} → ${a.status}`)
  }
  // What fetch cannot send: raw bytes on the wire.
  const raw = [
    'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000000\r\n\r\n{}',
    'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
      'ZZ\r\n{}\r\n0\r\n\r\n',
    'POST /jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n' +
      'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'GET /jobs/\u00ff\u00fe HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /jobs/a\x00b HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /jobs HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n',
    `GET /jobs HTTP/1.1\r\nHost: x\r\nX-Huge: ${'h'.repeat(20_000)}\r\n\r\n`,
    'BREW /jobs HTTP/1.1\r\nHost: x\r\n\r\n',
    'GET /jobs HTTP/9.9\r\nHost: x\r\n\r\n',
    '\r\n\r\n\r\n',
    'GET\r\n\r\n',
  ]
  for (const req of raw) {
    const r = await rawRequest(port, Buffer.from(req, 'latin1'), 10_000)
    t.ok(r.status === 0 || (r.status >= 400 && r.status < 500), `raw ${JSON.stringify(req.slice(0, 50))} → ${r.status}`)
  }
  // A chunked body of 2 MiB without Content-Length is cut off at the body limit.
  const chunked = await fetch(`${cluster.apiUrl}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"function":"echo","payload":"'))
        for (let i = 0; i < 32; i++) c.enqueue(new Uint8Array(64 * 1024).fill(0x61))
        c.enqueue(new TextEncoder().encode('"}'))
        c.close()
      },
    }),
    duplex: 'half',
  }).catch((err: Error) => ({ status: 0, err }))
  t.ok(chunked.status === 413 || chunked.status === 0, `chunked 2 MiB → ${chunked.status}`)
  t.same(problems, [])
})

t.test('afterwards: the job listing holds exactly the accepted jobs, and the cluster works', async (t) => {
  const listed = await listedIds()
  const unexpected = [...listed].filter((id) => !baseline.has(id) && !accepted.has(id))
  const missing = [...accepted].filter((id) => !listed.has(id))
  const described = await Promise.all(
    unexpected.map(async (id) => {
      const j = (await cluster.get(`/jobs/${id}`)).body
      return `${id} ${j?.function} ${j?.state} ${JSON.stringify(j?.payload)?.slice(0, 80)}`
    }),
  )
  t.same(described, [], 'no job exists that was not answered 2xx')
  t.same(missing, [], 'every accepted job is listed')
  t.same(deadProcesses(cluster), [], 'no process exited')
  t.equal(await healthProblem(cluster), undefined, 'the cluster still runs jobs')
})
