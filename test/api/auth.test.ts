/** Bearer auth: job routes and /cluster need a token when tokens are configured; health and docs stay open. */
import { createHash } from 'node:crypto'
import t from 'tap'
import { bearerAuth, bearerToken, matchToken } from '../../api/auth.js'
import { errors } from '../../runner/errors.js'
import { errorShape, makeApp, rawJson } from './helpers.js'

const TOKEN_A = 'token-aaaaaaaaaaaaaaaa'
const TOKEN_B = 'token-bbbbbbbbbbbbbbbb'

t.test('without a valid token: 401 in the error shape, service untouched', async (t) => {
  const { inject, service } = await makeApp(t, { apiTokens: [TOKEN_A, TOKEN_B] })
  const routes = [
    { method: 'POST' as const, url: '/jobs', payload: { function: 'echo' } },
    { method: 'POST' as const, url: '/jobs/batch', payload: { jobs: [{ function: 'echo' }] } },
    { method: 'GET' as const, url: '/jobs' },
    { method: 'GET' as const, url: '/jobs/J00000001' },
    { method: 'GET' as const, url: '/jobs/J00000001/logs' },
    { method: 'DELETE' as const, url: '/jobs/J00000001' },
    { method: 'GET' as const, url: '/cluster' },
    { method: 'GET' as const, url: '/cluster/stats' },
  ]
  const badHeaders: (Record<string, string> | undefined)[] = [
    undefined,
    { authorization: '' },
    { authorization: `Bearer ${TOKEN_A}x` },
    { authorization: `Bearer ${TOKEN_A.slice(0, -1)}` },
    { authorization: `Basic ${Buffer.from(`u:${TOKEN_A}`).toString('base64')}` },
    { authorization: TOKEN_A },
    { authorization: `Bearer ${TOKEN_A} ${TOKEN_B}` },
    { authorization: 'Bearer ' },
  ]
  for (const route of routes) {
    for (const headers of badHeaders) {
      const res = await inject({ ...route, ...(headers ? { headers } : {}) })
      t.equal(res.statusCode, 401, `${route.method} ${route.url} ${JSON.stringify(headers)}`)
      t.equal(errorShape(res).code, errors.UNAUTHORIZED.code)
      t.match(res.headers['www-authenticate'], /^Bearer/)
    }
  }
  t.equal(
    service.calls.submit.length +
      service.calls.submitBatch.length +
      service.calls.get.length +
      service.calls.list.length +
      service.calls.cancel.length +
      service.calls.cluster,
    0,
  )
})

t.test('auth runs before the body is parsed', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: [TOKEN_A] })
  const res = await inject(rawJson('/jobs', '{not json'))
  t.equal(res.statusCode, 401, 'an unauthenticated client learns nothing about the body')
})

t.test('with a valid token: routes answer; any configured token works; scheme is case-insensitive', async (t) => {
  const { inject, service } = await makeApp(t, { apiTokens: [TOKEN_A, TOKEN_B] })
  const a = await inject({
    method: 'POST',
    url: '/jobs',
    payload: { function: 'echo' },
    headers: { authorization: `Bearer ${TOKEN_A}` },
  })
  t.equal(a.statusCode, 202)
  const b = await inject({
    method: 'GET',
    url: `/jobs/${a.json().id}`,
    headers: { authorization: `bearer ${TOKEN_B}` },
  })
  t.equal(b.statusCode, 200)
  const c = await inject({ method: 'GET', url: '/cluster', headers: { authorization: `BEARER   ${TOKEN_B}` } })
  t.equal(c.statusCode, 200)
  t.equal(service.calls.submit.length, 1)
})

t.test('health, readiness, docs and unknown routes need no token', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: [TOKEN_A] })
  t.equal((await inject({ method: 'GET', url: '/healthz' })).statusCode, 200)
  t.equal((await inject({ method: 'GET', url: '/readyz' })).statusCode, 200)
  t.equal((await inject({ method: 'GET', url: '/docs/json' })).statusCode, 200)
  const nf = await inject({ method: 'GET', url: '/nope' })
  t.equal(nf.statusCode, 404)
})

t.test('no tokens configured: auth is off', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: [] })
  t.equal((await inject({ method: 'GET', url: '/cluster' })).statusCode, 200)
  t.equal((await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })).statusCode, 202)
})

t.test('matchToken / bearerToken / bearerAuth', async (t) => {
  const digests = [TOKEN_A, TOKEN_B].map((s) => createHash('sha256').update(s).digest())
  t.equal(matchToken(digests, TOKEN_A), 0)
  t.equal(matchToken(digests, TOKEN_B), 1)
  t.equal(matchToken(digests, ''), -1)
  t.equal(matchToken(digests, `${TOKEN_A}\n`), -1)
  t.equal(matchToken([], TOKEN_A), -1)
  t.equal(bearerToken(`Bearer ${TOKEN_A}`), TOKEN_A)
  t.equal(bearerToken(`Bearer\t${TOKEN_A} `), TOKEN_A)
  t.equal(bearerToken('Bearer'), undefined)
  t.equal(bearerToken(undefined), undefined)
  t.equal(bearerToken(`Token ${TOKEN_A}`), undefined)
  t.throws(() => bearerAuth([]), { code: errors.CONFIG.code })
})
