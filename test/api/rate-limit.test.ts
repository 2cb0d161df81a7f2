/** Per-client rate limit on the submit routes: 429 + Retry-After in the error shape. */
import t from 'tap'
import { errors } from '../../runner/errors.js'
import { errorShape, makeApp, rawJson } from './helpers.js'

const TOKEN_A = 'token-aaaaaaaaaaaaaaaa'
const TOKEN_B = 'token-bbbbbbbbbbbbbbbb'

t.test('over the limit → 429 with Retry-After; checked before the body is parsed', async (t) => {
  const { inject, service } = await makeApp(t, { rateLimit: { max: 2, timeWindowMs: 60_000 } })
  for (let i = 0; i < 2; i++) {
    const ok = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })
    t.equal(ok.statusCode, 202)
    t.equal(ok.headers['x-ratelimit-limit'], '2')
  }
  const limited = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })
  t.equal(limited.statusCode, 429)
  const err = errorShape(limited)
  t.equal(err.code, errors.RATE_LIMITED.code)
  t.match(err.message, /at most 2 requests/)
  const retryAfter = Number(limited.headers['retry-after'])
  t.ok(
    Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60,
    `Retry-After ${String(limited.headers['retry-after'])}`,
  )
  const badJson = await inject(rawJson('/jobs', '{oops'))
  t.equal(badJson.statusCode, 429, 'limited before parsing')
  t.equal(service.calls.submit.length, 2)

  // The batch route has its own budget; reads are never limited.
  t.equal(
    (await inject({ method: 'POST', url: '/jobs/batch', payload: { jobs: [{ function: 'echo' }] } })).statusCode,
    202,
  )
  for (let i = 0; i < 5; i++) t.equal((await inject({ method: 'GET', url: '/jobs' })).statusCode, 200)
  t.equal((await inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
})

t.test('with auth, each token is its own client', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: [TOKEN_A, TOKEN_B], rateLimit: { max: 1, timeWindowMs: 60_000 } })
  const as = (token: string) => ({
    method: 'POST' as const,
    url: '/jobs',
    payload: { function: 'echo' },
    headers: { authorization: `Bearer ${token}` },
  })
  t.equal((await inject(as(TOKEN_A))).statusCode, 202)
  t.equal((await inject(as(TOKEN_A))).statusCode, 429)
  t.equal((await inject(as(TOKEN_B))).statusCode, 202, 'another token from the same IP is not limited')
  t.equal(
    (await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })).statusCode,
    401,
    'no token: 401, not 429',
  )
})

t.test('no rate limit configured: no limit headers, no 429', async (t) => {
  const { inject } = await makeApp(t)
  for (let i = 0; i < 20; i++) {
    const res = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })
    t.equal(res.statusCode, 202)
    t.notOk(res.headers['x-ratelimit-limit'])
  }
})
