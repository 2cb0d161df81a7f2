/**
 * The typed HTTP client (client/http.ts) against a local http.createServer with canned answers (no
 * cluster): API errors map to their classes with code and details; 429/503 are retried after
 * Retry-After, at most maxRetries times, and only where safe; the bearer token is sent; list() follows
 * cursors; wait() long polls (?wait) to a final state, polls an API that refuses or does not hold the
 * wait, times out, and stops on abort; the SSE parser and events() (reconnect with
 * Last-Event-ID, type filter, stop on break and on abort).
 */
import t from 'tap'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  Bosun,
  BosunApiError,
  BosunConflictError,
  BosunNetworkError,
  BosunNotFoundError,
  BosunRateLimitedError,
  BosunTimeoutError,
  BosunUnavailableError,
  BosunValidationError,
} from '../../client/http.js'
import { SseParser } from '../../client/sse.js'

interface Seen {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
  at: number
}
type Handler = (req: Seen, res: ServerResponse) => void

/** A server answering with `handler`; every request is recorded in `seen`. */
async function fake(handler: Handler) {
  const seen: Seen[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString()))
    req.on('end', () => {
      const s = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, at: Date.now() }
      seen.push(s)
      handler(s, res)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return { url, seen }
}

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', ...headers })
  res.end(JSON.stringify(body))
}
const apiErr = (code: string, statusCode: number, details?: unknown) => ({
  statusCode,
  code,
  message: `canned ${code}`,
  ...(details === undefined ? {} : { details }),
})
const job = (id: string, state: string, extra: object = {}) => ({ id, function: 'echo', state, payload: {}, ...extra })

t.test('API errors map to their classes, with code, status and details', async (t) => {
  const { url } = await fake((req, res) => {
    if (req.url === '/jobs/gone') return json(res, 404, apiErr('BOSUN_ERR_JOB_NOT_FOUND', 404))
    if (req.url === '/jobs/x/retry')
      return json(res, 409, apiErr('BOSUN_ERR_JOB_NOT_RETRYABLE', 409, { state: 'succeeded' }))
    if (req.url === '/jobs') return json(res, 400, apiErr('BOSUN_ERR_VALIDATION', 400, { field: 'body.priority' }))
    if (req.url === '/jobs/batch') return json(res, 404, apiErr('BOSUN_ERR_UNKNOWN_FUNCTION', 404))
    res.writeHead(502, { 'content-type': 'text/html' })
    res.end('<h1>bad gateway</h1>')
  })
  const c = new Bosun({ url })
  t.equal(await c.get('gone'), null, 'get of an unknown job is null')
  await t.rejects(c.cancel('gone'), BosunNotFoundError)
  const conflict = await c.retry('x').catch((e: unknown) => e)
  t.ok(conflict instanceof BosunConflictError && conflict instanceof BosunApiError)
  t.match(conflict, { status: 409, code: 'BOSUN_ERR_JOB_NOT_RETRYABLE', details: { state: 'succeeded' } })
  t.match((conflict as Error).message, /POST \/jobs\/x\/retry: 409 BOSUN_ERR_JOB_NOT_RETRYABLE/)
  const bad = await c.submit('echo', {}, { priority: 5000 }).catch((e: unknown) => e)
  t.ok(bad instanceof BosunValidationError)
  t.match(bad, { code: 'BOSUN_ERR_VALIDATION', details: { field: 'body.priority' } })
  await t.rejects(c.submitBatch([{ function: 'nope' }]), {
    name: 'BosunNotFoundError',
    code: 'BOSUN_ERR_UNKNOWN_FUNCTION',
  })
  const other = await c.get('y').catch((e: unknown) => e)
  t.ok(other instanceof BosunApiError)
  t.match(other, { status: 502, code: 'HTTP_502', message: /bad gateway/ })
})

t.test('503 and 429 are retried after Retry-After; the token and the body are sent', async (t) => {
  let n = 0
  const { url, seen } = await fake((req, res) => {
    n++
    if (n === 1) return json(res, 503, apiErr('BOSUN_ERR_NO_BOSS', 503), { 'retry-after': '1' })
    if (n === 2) return json(res, 429, apiErr('BOSUN_ERR_QUEUE_FULL', 429), { 'retry-after': '1' })
    json(res, 202, job('b-0', 'queued', { payload: JSON.parse(req.body).payload }))
  })
  const c = new Bosun({ url, token: 's3cret' })
  const j = await c.submit<{ n: number }, { n: number }>('echo', { n: 1 }, { priority: 3 })
  t.equal(j.payload.n, 1, 'payload typed and returned')
  t.equal(seen.length, 3)
  const [a, b, d] = seen as [Seen, Seen, Seen]
  t.ok(b.at - a.at >= 990, `waited ${b.at - a.at} ms after the 503's Retry-After: 1`)
  t.ok(d.at - b.at >= 990, `waited ${d.at - b.at} ms after the 429's Retry-After: 1`)
  for (const s of seen) {
    t.equal(s.headers.authorization, 'Bearer s3cret')
    t.equal(s.headers['content-type'], 'application/json')
    t.same(JSON.parse(s.body), { function: 'echo', payload: { n: 1 }, priority: 3 })
  }
})

t.test('maxRetries bounds the retries; a Retry-After over the cap is not waited for', async (t) => {
  const { url, seen } = await fake((_req, res) =>
    json(res, 503, apiErr('BOSUN_ERR_STORE', 503), { 'retry-after': '0' }),
  )
  const c = new Bosun({ url, maxRetries: 2 })
  await t.rejects(c.get('a'), BosunUnavailableError)
  t.equal(seen.length, 3, 'one request and 2 retries')

  const { url: url2, seen: seen2 } = await fake((_req, res) =>
    json(res, 429, apiErr('BOSUN_ERR_RATE_LIMITED', 429), { 'retry-after': '60' }),
  )
  const t0 = Date.now()
  const err = await new Bosun({ url: url2, maxRetryDelayMs: 5000 }).get('a').catch((e: unknown) => e)
  t.ok(err instanceof BosunRateLimitedError)
  t.match(err, { retryAfterMs: 60_000 })
  t.equal(seen2.length, 1)
  t.ok(Date.now() - t0 < 1000, 'thrown at once')
})

t.test('a submit is retried on a 503 only when safe', async (t) => {
  const { url, seen } = await fake((req, res) => {
    const store = req.body.includes('"store"')
    json(res, 503, apiErr(store ? 'BOSUN_ERR_STORE' : 'BOSUN_ERR_NO_BOSS', 503), { 'retry-after': '0' })
  })
  const c = new Bosun({ url, maxRetries: 1 })
  await t.rejects(c.submit('echo', 'store'), BosunUnavailableError)
  t.equal(seen.length, 1, 'BOSUN_ERR_STORE may have stored it: a submit without a key is not repeated')
  await t.rejects(c.submit('echo', 'store', { idempotencyKey: 'k1' }), BosunUnavailableError)
  t.equal(seen.length, 3, 'with an idempotencyKey it is')
  await t.rejects(c.submit('echo', 'noboss'), BosunUnavailableError)
  t.equal(seen.length, 5, 'BOSUN_ERR_NO_BOSS is answered before any write: repeated')
  await t.rejects(c.submitBatch([{ function: 'echo', payload: 'store' }]), BosunUnavailableError)
  t.equal(seen.length, 6)
  await t.rejects(c.retry('x'), BosunUnavailableError)
  t.equal(seen.length, 7, 'a retry without requestId is not repeated')
})

t.test('network errors: repeatable requests are retried, a sent POST without a key is not', async (t) => {
  const { url, seen } = await fake((req, res) => {
    if (seen.length <= 1) return res.socket?.destroy() // the first request of each call gets a reset
    json(res, 200, req.method === 'GET' ? job('a', 'queued') : job('b', 'queued'))
  })
  const c = new Bosun({ url })
  const j = await c.get('a')
  t.equal(j?.id, 'a', 'GET retried after a reset')
  t.equal(seen.length, 2)
  seen.length = 0
  const err = await c.submit('echo', 1).catch((e: unknown) => e)
  t.ok(err instanceof BosunNetworkError, 'a POST /jobs without idempotencyKey is not sent twice')
  t.equal(seen.length, 1)
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const port = (closed.address() as AddressInfo).port
  await new Promise((resolve) => closed.close(resolve))
  const refused = await new Bosun({ url: `http://127.0.0.1:${port}`, maxRetries: 0 }).get('a').catch((e: unknown) => e)
  t.ok(refused instanceof BosunNetworkError)
  t.equal((refused as BosunNetworkError).maybeSent, false)
})

t.test('list() follows next cursors; pages() yields the pages', async (t) => {
  const { url, seen } = await fake((req, res) => {
    const q = new URL(req.url, 'http://x').searchParams
    const cursor = q.get('cursor')
    if (cursor === null) return json(res, 200, { jobs: [job('a', 'failed'), job('b', 'failed')], next: 'c1' })
    if (cursor === 'c1') return json(res, 200, { jobs: [job('c', 'failed'), job('d', 'failed')], next: 'c2' })
    json(res, 200, { jobs: [job('e', 'failed')] })
  })
  const c = new Bosun({ url })
  const ids: string[] = []
  for await (const j of c.list({ state: 'failed', function: 'echo', limit: 2 })) ids.push(j.id)
  t.same(ids, ['a', 'b', 'c', 'd', 'e'])
  t.same(
    seen.map((s) => s.url),
    [
      '/jobs?state=failed&function=echo&limit=2',
      '/jobs?state=failed&function=echo&limit=2&cursor=c1',
      '/jobs?state=failed&function=echo&limit=2&cursor=c2',
    ],
  )
  const sizes: number[] = []
  for await (const p of c.pages({ limit: 2 })) sizes.push(p.jobs.length)
  t.same(sizes, [2, 2, 1])
  // Leaving early requests no further page.
  seen.length = 0
  for await (const j of c.list()) if (j.id === 'a') break
  t.equal(seen.length, 1)
})

t.test('wait() against an API that does not hold the wait: polled until final; times out', async (t) => {
  let polls = 0
  const { url } = await fake((req, res) => {
    if (req.url.startsWith('/jobs/slow')) return json(res, 200, job('slow', 'running'))
    polls++
    json(res, 200, job('j', polls < 3 ? 'running' : 'succeeded', { result: { n: 2 } }))
  })
  const c = new Bosun({ url })
  const done = await c.wait<unknown, { n: number }>('j', { timeoutMs: 5000, pollMs: 20 })
  t.equal(done.state, 'succeeded')
  t.equal(done.result?.n, 2)
  t.equal(polls, 3)
  const t0 = Date.now()
  const err = await c.wait('slow', { timeoutMs: 300, pollMs: 50 }).catch((e: unknown) => e)
  t.ok(err instanceof BosunTimeoutError)
  t.match(err, { job: { id: 'slow', state: 'running' } })
  const took = Date.now() - t0
  t.ok(took >= 300 && took < 1500, `rejected after ${took} ms`)
})

t.test('wait() long polls: the request is held until the job ends', async (t) => {
  let finishAt = Infinity
  const { url, seen } = await fake((req, res) => {
    const wait = Number(new URL(req.url, 'http://x').searchParams.get('wait') ?? 0)
    // Decided when the request arrives: a timer may fire a millisecond before Date.now() reaches
    // finishAt (libuv times from the loop's cached clock), so it must not re-check the time.
    const now = Date.now()
    const ends = finishAt <= now + wait
    const answer = () => json(res, 200, job('j', ends ? 'succeeded' : 'running'))
    setTimeout(answer, Math.max(0, Math.min(now + wait, finishAt) - now))
  })
  const c = new Bosun({ url })
  finishAt = Date.now() + 400
  const done = await c.wait('j', { timeoutMs: 10_000 })
  t.equal(done.state, 'succeeded')
  t.ok(Date.now() - finishAt < 300, `resolved ${Date.now() - finishAt} ms after the job ended`)
  t.equal(seen.length, 1, 'one request, held by the API')
  t.match(seen[0]!.url, /^\/jobs\/j\?wait=\d+$/)
  t.ok(Number(seen[0]!.url.split('=')[1]) <= 10_000, 'the wait is within the timeout')
})

t.test('wait() falls back to polling when the API refuses the wait; stops on abort', async (t) => {
  let polls = 0
  const { url, seen } = await fake((req, res) => {
    if (req.url.includes('?')) return json(res, 400, apiErr('BOSUN_ERR_VALIDATION', 400))
    polls++
    json(res, 200, job('j', polls < 3 ? 'running' : 'succeeded'))
  })
  const c = new Bosun({ url })
  t.equal((await c.wait('j', { timeoutMs: 5000, pollMs: 20 })).state, 'succeeded')
  t.equal(seen.filter((s) => s.url.includes('?')).length, 1, 'the wait was asked for once')
  t.equal(polls, 3)

  const held = await fake(() => undefined) // never answers
  const ctl = new AbortController()
  setTimeout(() => ctl.abort(new Error('stop')), 200)
  const t0 = Date.now()
  await t.rejects(new Bosun({ url: held.url }).wait('j', { timeoutMs: 60_000, signal: ctl.signal }), /stop/)
  t.ok(Date.now() - t0 < 2000, `a long poll in flight stopped ${Date.now() - t0} ms after the abort`)
})

t.test('the SSE parser: multi-line data, ids, comments, retry, CRLF/CR, chunks split anywhere', async (t) => {
  const text =
    'retry: 2000\r\n\r\n: keep-alive\n\nid: 7\nevent: boss.elected\ndata: {"a":\ndata:  1}\n\n' +
    'data: no id\r\rid: 9\r\ndata: x\r\n\r\n: trailing comment\nid: 10\n\ndata: unterminated'
  const expected = [
    { event: 'boss.elected', data: '{"a":\n 1}', lastEventId: '7' },
    { event: 'message', data: 'no id', lastEventId: '7' },
    { event: 'message', data: 'x', lastEventId: '9' },
  ]
  for (const size of [1, 2, 3, 5, 7, text.length]) {
    const p = new SseParser()
    const out = []
    for (let i = 0; i < text.length; i += size) out.push(...p.push(text.slice(i, i + size)))
    t.same(out, expected, `chunks of ${size}`)
    t.equal(p.retryMs, 2000)
    t.equal(p.lastEventId, '10', 'an id without data still moves the last event id')
  }
})

const event = (id: number, type: string) => ({
  id: String(id),
  type,
  at: new Date().toISOString(),
  source: { id: 'w1', host: 'h', pid: 1, role: 'worker' },
  data: {},
})
const sse = (e: ReturnType<typeof event>) => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`

t.test('events(): parses the stream, reconnects with Last-Event-ID, filters types, stops', async (t) => {
  const open = new Set<ServerResponse>()
  const { url, seen } = await fake((req, res) => {
    t.equal(req.url, '/cluster/events/stream')
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write('retry: 50\n\n: keep-alive\n\n')
    open.add(res)
    res.on('close', () => open.delete(res))
    const after = Number(req.headers['last-event-id'] ?? 0)
    if (after < 3) {
      // the first connection: three events, then it drops
      res.write(sse(event(after + 1, 'boss.elected')) + sse(event(after + 2, 'worker.joined')))
      res.end(sse(event(after + 3, 'boss.active')))
    } else res.write(sse(event(after + 1, 'boss.active')) + ': keep-alive\n\n')
  })
  const c = new Bosun({ url, token: 'tk' })
  const got: string[] = []
  for await (const e of c.events({ types: ['boss.elected', 'boss.active'] })) {
    got.push(`${e.id} ${e.type}`)
    if (got.length === 3) break
  }
  t.same(got, ['1 boss.elected', '3 boss.active', '4 boss.active'])
  t.equal(seen.length, 2, 'reconnected once')
  t.equal(seen[0]?.headers['last-event-id'], undefined)
  t.equal(seen[1]?.headers['last-event-id'], '3', 'resumed after the last event seen')
  t.equal(seen[1]?.headers.authorization, 'Bearer tk')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(open.size, 0, 'leaving the loop closed the connection')

  // An abort ends an iteration that is waiting for the next event.
  const ctl = new AbortController()
  const it = c.events({ lastEventId: '100', signal: ctl.signal })
  const first = await it.next()
  t.equal(first.value?.id, '101')
  t.equal(seen.at(-1)?.headers['last-event-id'], '100')
  const pending = it.next()
  setTimeout(() => ctl.abort(), 50)
  t.same(await pending, { done: true, value: undefined }, 'aborted: done')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(open.size, 0, 'the aborted stream is closed')
})

t.test('events(): a message cut by a dropped connection is dropped, not glued to the next', async (t) => {
  const { url, seen } = await fake((req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    if (req.headers['last-event-id'] === undefined) {
      res.write('retry: 10\n\n' + sse(event(1, 'boss.elected')))
      res.end('id: 2\ndata: {"id":"2","ty')
    } else res.write(sse(event(2, 'boss.active')))
  })
  const got: string[] = []
  for await (const e of new Bosun({ url }).events()) if (got.push(`${e.id} ${e.type}`) === 2) break
  t.same(got, ['1 boss.elected', '2 boss.active'])
  t.equal(seen[1]?.headers['last-event-id'], '1', 'the unfinished message did not count')
})

t.test('events(): an error answer is thrown (400), a 503 is retried', async (t) => {
  let n = 0
  const { url } = await fake((req, res) => {
    if (req.headers['last-event-id'] === 'x') return json(res, 400, apiErr('BOSUN_ERR_VALIDATION', 400))
    if (++n === 1) return json(res, 503, apiErr('BOSUN_ERR_UNAVAILABLE', 503), { 'retry-after': '0' })
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(sse(event(5, 'boss.deposed')))
  })
  const c = new Bosun({ url })
  await t.rejects(c.events({ lastEventId: 'x' }).next(), BosunValidationError)
  const it = c.events()
  t.equal((await it.next()).value?.type, 'boss.deposed')
  await it.return(undefined)
  t.equal(n, 2)
})
