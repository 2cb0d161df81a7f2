/**
 * Error answers: one shape for everything; bad input is a clear 4xx that changes nothing; service
 * errors keep their status (503 + Retry-After for NO_BOSS); unexpected errors are a 500 that does
 * not leak.
 */
import { pino } from 'pino'
import t from 'tap'
import { errors } from '../../runner/errors.js'
import { describeValidation, mapError } from '../../api/error-handler.js'
import { errorShape, makeApp, rawJson } from './helpers.js'

t.test('malformed JSON → 400 BOSUN_ERR_BAD_JSON, service untouched', async (t) => {
  const { inject, service } = await makeApp(t)
  for (const body of [
    '{"function":',
    '{function: "echo"}',
    "{'function':'echo'}",
    '{"function":"echo",}',
    'undefined',
    '{"a":1}{"b":2}',
    '\u0000',
    '{"function":"echo"',
  ]) {
    const res = await inject(rawJson('/jobs', body))
    t.equal(res.statusCode, 400, JSON.stringify(body))
    const err = errorShape(res)
    t.equal(err.code, errors.BAD_JSON.code)
    t.match(err.message, /not valid JSON/)
  }
  const batch = await inject(rawJson('/jobs/batch', '{"jobs": ['))
  t.equal(batch.statusCode, 400)
  t.equal(errorShape(batch).code, errors.BAD_JSON.code)
  const empty = await inject(rawJson('/jobs', ''))
  t.equal(empty.statusCode, 400, 'empty JSON body')
  t.equal(errorShape(empty).code, errors.BAD_JSON.code)
  t.equal(service.calls.submit.length + service.calls.submitBatch.length, 0)
})

t.test('valid JSON of the wrong type → 400 BOSUN_ERR_VALIDATION naming the body', async (t) => {
  const { inject, service } = await makeApp(t)
  for (const body of ['null', '[]', '"echo"', '42', 'true', '[{"function":"echo"}]']) {
    const res = await inject(rawJson('/jobs', body))
    t.equal(res.statusCode, 400, body)
    const err = errorShape(res)
    t.equal(err.code, errors.VALIDATION.code)
    t.equal(err.message, 'body must be object')
  }
  const none = await inject({ method: 'POST', url: '/jobs' })
  t.equal(none.statusCode, 400, 'no body at all')
  t.equal(errorShape(none).code, errors.VALIDATION.code)
  t.equal(service.calls.submit.length, 0)
})

t.test('unknown properties are rejected, not stripped', async (t) => {
  const { inject, service } = await makeApp(t)
  const res = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo', maxAttempt: 5 } })
  t.equal(res.statusCode, 400)
  const err = errorShape(res)
  t.equal(err.message, 'body.maxAttempt is not allowed (unknown property)')
  t.same(err.details, { field: 'body.maxAttempt' })
  t.equal(service.calls.submit.length, 0)
})

t.test('wrong content type → 415 (text/plain is not parsed either)', async (t) => {
  const { inject, service } = await makeApp(t)
  for (const ct of [
    'text/plain',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/xml',
    'application/jsonx',
    'garbage;;;',
  ]) {
    const res = await inject({
      method: 'POST',
      url: '/jobs',
      payload: '{"function":"echo"}',
      headers: { 'content-type': ct },
    })
    t.equal(res.statusCode, 415, ct)
    t.equal(errorShape(res).code, errors.UNSUPPORTED_MEDIA_TYPE.code)
  }
  const charset = await inject({
    method: 'POST',
    url: '/jobs',
    payload: '{"function":"echo"}',
    headers: { 'content-type': 'application/json; charset=utf-8' },
  })
  t.equal(charset.statusCode, 202, 'a charset parameter is fine')
  t.equal(service.calls.submit.length, 1)
})

t.test('body over the limit → 413, for both submit routes', async (t) => {
  const { inject, service } = await makeApp(t, { bodyLimitBytes: 2048 })
  const big = JSON.stringify({ function: 'echo', payload: 'x'.repeat(4096) })
  const res = await inject(rawJson('/jobs', big))
  t.equal(res.statusCode, 413)
  const err = errorShape(res)
  t.equal(err.code, errors.BODY_TOO_LARGE.code)
  t.match(err.message, /2048 bytes/)
  const batch = await inject(
    rawJson('/jobs/batch', JSON.stringify({ jobs: [{ function: 'echo', payload: 'y'.repeat(4096) }] })),
  )
  t.equal(batch.statusCode, 413)
  const fits = await inject(rawJson('/jobs', JSON.stringify({ function: 'echo', payload: 'x'.repeat(1500) })))
  t.equal(fits.statusCode, 202, 'a body under the limit is accepted')
  t.equal(service.calls.submit.length, 1)
  t.equal(service.calls.submitBatch.length, 0)
})

t.test('default body limit is 1 MiB', async (t) => {
  const { inject } = await makeApp(t)
  const over = await inject(rawJson('/jobs', JSON.stringify({ function: 'echo', payload: 'x'.repeat(1024 * 1024) })))
  t.equal(over.statusCode, 413)
  const under = await inject(
    rawJson('/jobs', JSON.stringify({ function: 'echo', payload: 'x'.repeat(1024 * 1024 - 100) })),
  )
  t.equal(under.statusCode, 202)
})

t.test('__proto__ / constructor.prototype bodies → 400 and never pollute Object.prototype', async (t) => {
  const { inject, service } = await makeApp(t)
  const bodies = [
    '{"function":"echo","__proto__":{"polluted":"yes"}}',
    '{"function":"echo","payload":{"__proto__":{"polluted":"yes"}}}',
    '{"function":"echo","payload":[{"a":{"__proto__":{"polluted":"yes"}}}]}',
    '{"function":"echo","payload":{"constructor":{"prototype":{"polluted":"yes"}}}}',
    '{"jobs":[{"function":"echo","payload":{"__proto__":{"polluted":"yes"}}}]}',
  ]
  for (const body of bodies) {
    const url = body.startsWith('{"jobs"') ? '/jobs/batch' : '/jobs'
    const res = await inject(rawJson(url, body))
    t.equal(res.statusCode, 400, body)
    const err = errorShape(res)
    t.equal(err.code, errors.BAD_JSON.code)
    t.match(err.message, /forbidden "__proto__"/)
    t.equal(({} as Record<string, unknown>).polluted, undefined, 'Object.prototype is untouched')
  }
  t.equal(service.calls.submit.length + service.calls.submitBatch.length, 0, 'nothing reached the service')
  const harmless = await inject(
    rawJson('/jobs', '{"function":"echo","payload":{"constructor":"just a key","proto":1}}'),
  )
  t.equal(harmless.statusCode, 202, 'a plain "constructor" key is data, not poisoning')
})

t.test('service errors: NO_BOSS → 503 with Retry-After; status and details kept', async (t) => {
  const { inject, service } = await makeApp(t)
  service.failWith = errors.NO_BOSS('no boss is elected; retry shortly', { retryAfterSeconds: 2 })
  const res = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '2')
  t.same(errorShape(res), { statusCode: 503, code: errors.NO_BOSS.code, message: 'no boss is elected; retry shortly' })

  service.failWith = errors.STORE('store unavailable')
  const store = await inject({ method: 'GET', url: '/jobs' })
  t.equal(store.statusCode, 503)
  t.equal(store.headers['retry-after'], '1', 'a 503 without retryAfterSeconds still says when to retry')

  service.failWith = errors.QUEUE_FULL('too many queued jobs', { retryAfterSeconds: 30, details: { queued: 100000 } })
  const full = await inject({ method: 'POST', url: '/jobs/batch', payload: { jobs: [{ function: 'echo' }] } })
  t.equal(full.statusCode, 429)
  t.equal(full.headers['retry-after'], '30')
  t.same(errorShape(full).details, { queued: 100000 })

  service.failWith = errors.IDEMPOTENCY_CONFLICT()
  const conflict = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo', idempotencyKey: 'k' } })
  t.equal(conflict.statusCode, 409)
  t.notOk(conflict.headers['retry-after'])
})

t.test('an unexpected error → 500 BOSUN_ERR_INTERNAL without leaking its message', async (t) => {
  const { inject, service } = await makeApp(t)
  service.failWith = new TypeError('secret internal detail at /srv/x.js')
  for (const req of [
    { method: 'GET' as const, url: '/jobs/J1' },
    { method: 'GET' as const, url: '/cluster' },
  ]) {
    const res = await inject(req)
    t.equal(res.statusCode, 500)
    t.same(errorShape(res), { statusCode: 500, code: 'BOSUN_ERR_INTERNAL', message: 'internal error' })
    t.notMatch(res.body, /secret/)
  }
  service.failWith = 'a thrown string'
  const str = await inject({ method: 'GET', url: '/jobs' })
  t.equal(str.statusCode, 500)
  errorShape(str)
})

t.test('unknown routes and methods → 404 in the error shape; malformed URLs → 400', async (t) => {
  const { inject } = await makeApp(t)
  for (const [method, url] of [
    ['GET', '/nope'],
    ['PUT', '/jobs'],
    ['PATCH', '/jobs/J1'],
    ['POST', '/cluster'],
    ['GET', '/jobs/J1/extra'],
  ] as const) {
    const res = await inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(errorShape(res).code, errors.ROUTE_NOT_FOUND.code)
  }
  const bad = await inject({ method: 'GET', url: '/jobs/%zz' })
  t.equal(bad.statusCode, 400)
  t.equal(errorShape(bad).code, errors.VALIDATION.code)
})

t.test('mapError covers Fastify codes and plain 4xx errors', async (t) => {
  const cases: [unknown, number, string][] = [
    [
      Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', statusCode: 415 }),
      415,
      errors.UNSUPPORTED_MEDIA_TYPE.code,
    ],
    [
      Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_TYPE', statusCode: 400 }),
      415,
      errors.UNSUPPORTED_MEDIA_TYPE.code,
    ],
    [
      Object.assign(new RangeError('x'), { code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 }),
      413,
      errors.BODY_TOO_LARGE.code,
    ],
    [
      Object.assign(new Error('x'), { code: 'FST_ERR_CTP_EMPTY_JSON_BODY', statusCode: 400 }),
      400,
      errors.BAD_JSON.code,
    ],
    [
      Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_JSON_BODY', statusCode: 400 }),
      400,
      errors.BAD_JSON.code,
    ],
    [
      Object.assign(new RangeError('x'), { code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', statusCode: 400 }),
      400,
      errors.BAD_JSON.code,
    ],
    [Object.assign(new SyntaxError('Unexpected token'), { statusCode: 400 }), 400, errors.BAD_JSON.code],
    [Object.assign(new Error('Request Timeout'), { statusCode: 408 }), 408, errors.VALIDATION.code],
    [Object.assign(new Error('slow down'), { statusCode: 429 }), 429, errors.RATE_LIMITED.code],
    [new Error('boom'), 500, 'BOSUN_ERR_INTERNAL'],
    [undefined, 500, 'BOSUN_ERR_INTERNAL'],
  ]
  for (const [err, status, code] of cases) {
    const m = mapError(err)
    t.equal(m.body.statusCode, status, String((err as Error | undefined)?.message))
    t.equal(m.body.code, code)
  }
  t.equal(mapError(new Error('boom')).log, 'error', 'a bug is logged as an error')
  t.equal(mapError(errors.NO_BOSS()).log, 'warn')
  t.equal(mapError(errors.VALIDATION()).log, 'none')
})

t.test('describeValidation reads Ajv-style issues too', async (t) => {
  t.same(
    describeValidation(
      [{ keyword: 'required', instancePath: '/jobs/4', params: { missingProperty: 'function' } }],
      'body',
    ),
    {
      message: 'jobs[4] is invalid: function is required',
      details: { field: 'body.jobs[4].function', index: 4 },
    },
  )
  t.same(
    describeValidation(
      [{ keyword: 'additionalProperties', instancePath: '', params: { additionalProperty: 'x' } }],
      'body',
    ),
    {
      message: 'body.x is not allowed (unknown property)',
      details: { field: 'body.x' },
    },
  )
  t.same(describeValidation([], undefined), { message: 'request is invalid', details: { field: 'request' } })
})

t.test('an unexpected error is logged with its stack; a client error is not logged as an error', async (t) => {
  const lines: Record<string, unknown>[] = []
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  )
  const { inject, service } = await makeApp(t, { logger })
  await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo', bad: 1 } })
  t.notOk(
    lines.some((l) => (l.level as number) >= 50),
    'a 400 is not an error in the logs',
  )
  service.failWith = new RangeError('kaboom')
  await inject({ method: 'GET', url: '/jobs' })
  const logged = lines.find((l) => l.level === 50)
  t.ok(logged, 'logged at error level')
  t.match(logged, { component: 'api', err: { type: 'RangeError', message: 'kaboom', stack: /RangeError: kaboom/ } })
})
