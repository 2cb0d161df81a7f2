/** The OpenAPI document is generated from the schemas and served under /docs. */
import t from 'tap'
import { makeApp } from './helpers.js'

interface OpenApiDoc {
  openapi: string
  info: { title: string; version: string }
  paths: Record<
    string,
    Record<
      string,
      {
        requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }
        responses: Record<string, unknown>
        parameters?: { name: string; in: string }[]
        security?: unknown[]
      }
    >
  >
  components?: { securitySchemes?: Record<string, unknown> }
}

t.test('/docs/json lists every route with its methods, schemas and responses', async (t) => {
  const { inject } = await makeApp(t)
  const res = await inject({ method: 'GET', url: '/docs/json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /application\/json/)
  const doc: OpenApiDoc = res.json()
  t.match(doc.openapi, /^3\.1\./)
  t.equal(doc.info.title, 'bosun')
  const routes = Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`))
    .sort()
  t.same(routes, [
    'DELETE /jobs/{id}',
    'GET /cluster',
    'GET /cluster/events',
    'GET /cluster/events/stream',
    'GET /cluster/leadership',
    'GET /cluster/stats',
    'GET /healthz',
    'GET /jobs',
    'GET /jobs/{id}',
    'GET /jobs/{id}/logs',
    'GET /metrics',
    'GET /readyz',
    'POST /jobs',
    'POST /jobs/batch',
    'POST /jobs/retry',
    'POST /jobs/{id}/retry',
  ])

  const submit = doc.paths['/jobs']?.post
  const body = submit?.requestBody?.content['application/json']?.schema as {
    properties: Record<string, Record<string, unknown>>
    required: string[]
    additionalProperties: boolean
  }
  t.same(body.required, ['function'])
  t.equal(body.additionalProperties, false)
  t.same(Object.keys(body.properties).sort(), [
    'callbackUrl',
    'concurrencyKey',
    'delayMs',
    'function',
    'idempotencyKey',
    'maxAttempts',
    'payload',
    'priority',
    'timeoutMs',
  ])
  t.equal(body.properties.function?.pattern, '^[a-z][a-z0-9_-]{0,63}$')
  t.same(Object.keys(submit?.responses ?? {}).sort(), [
    '200',
    '202',
    '400',
    '401',
    '404',
    '409',
    '413',
    '415',
    '429',
    '503',
  ])
  t.same(
    submit?.parameters?.map((p) => `${p.in}:${p.name}`),
    ['query:wait'],
  )
  t.same(doc.paths['/jobs']?.get?.parameters?.map((p) => p.name).sort(), ['cursor', 'function', 'limit', 'state'])
  t.same(
    doc.paths['/jobs/{id}']?.get?.parameters?.map((p) => `${p.in}:${p.name}`),
    ['query:wait', 'path:id'],
  )
  t.ok(doc.paths['/jobs/batch']?.post?.responses['202'])
  t.notOk(submit?.security, 'no security requirement when auth is off')
})

t.test('with tokens the document declares bearer security on the protected routes only', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: ['token-aaaaaaaaaaaaaaaa'] })
  const doc: OpenApiDoc = (await inject({ method: 'GET', url: '/docs/json' })).json()
  t.same(doc.components?.securitySchemes, { bearer: { type: 'http', scheme: 'bearer' } })
  t.same(doc.paths['/jobs']?.post?.security, [{ bearer: [] }])
  t.same(doc.paths['/cluster']?.get?.security, [{ bearer: [] }])
  t.notOk(doc.paths['/healthz']?.get?.security)
})

t.test('/docs serves the UI', async (t) => {
  const { inject } = await makeApp(t)
  const res = await inject({ method: 'GET', url: '/docs' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /swagger/i)
  const init = await inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
  t.equal(init.statusCode, 200)
})
