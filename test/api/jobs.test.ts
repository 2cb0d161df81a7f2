/** The job routes: happy paths, status codes, ?wait, batch validation, list and cancel. */
import t from 'tap'
import { errors } from '../../runner/errors.js'
import {
  MAX_DELAY_MS,
  MAX_MAX_ATTEMPTS,
  MAX_PRIORITY,
  MAX_TIMEOUT_MS,
  MIN_PRIORITY,
  publicJob,
} from '../../jobs/model.js'
import { errorShape, makeApp } from './helpers.js'

t.test('POST /jobs stores a job: 202 with the job, Location, spec passed through unchanged', async (t) => {
  const { inject, service } = await makeApp(t)
  const spec = {
    function: 'echo',
    payload: { a: [1, 'two', null] },
    idempotencyKey: 'k-1',
    priority: 5,
    delayMs: 10,
    timeoutMs: 1000,
    maxAttempts: 3,
  }
  const res = await inject({ method: 'POST', url: '/jobs', payload: spec })
  t.equal(res.statusCode, 202)
  const job = res.json()
  t.match(job, {
    function: 'echo',
    state: 'queued',
    attempts: 0,
    maxAttempts: 3,
    payload: spec.payload,
    priority: 5,
    timeoutMs: 1000,
    idempotencyKey: 'k-1',
  })
  t.type(job.id, 'string')
  t.equal(res.headers.location, `/jobs/${job.id}`)
  t.notOk('epoch' in job, 'internal fields are not shown')
  t.notOk('cancelRequested' in job)
  t.equal(service.calls.submit.length, 1)
  t.same(service.calls.submit[0]?.spec, spec, 'the service gets the spec exactly as sent')
  t.same(service.calls.submit[0]?.opts, {}, 'no wait requested')
})

t.test('payload may be any JSON value', async (t) => {
  const { inject, service } = await makeApp(t)
  const payloads: unknown[] = [
    null,
    0,
    -1.5,
    'text',
    true,
    [],
    [1, [2, { x: 'y' }]],
    { nested: { deep: { deeper: [null] } } },
    { constructor: 'fine', prototype: 1 },
  ]
  for (const payload of payloads) {
    const res = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo', payload } })
    t.equal(res.statusCode, 202, JSON.stringify(payload))
    t.same(service.calls.submit.at(-1)?.spec.payload, payload)
  }
  const none = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })
  t.equal(none.statusCode, 202, 'payload is optional')
  t.notOk('payload' in (service.calls.submit.at(-1)?.spec ?? {}), 'absent payload stays absent')
})

t.test('?wait: 200 with the finished job, 202 with the current state when not finished', async (t) => {
  const { inject, service } = await makeApp(t, { maxWaitMs: 5000 })
  const done = await inject({
    method: 'POST',
    url: '/jobs?wait=1000',
    payload: { function: 'echo', payload: { hi: 1 } },
  })
  t.equal(done.statusCode, 200)
  t.match(done.json(), { state: 'succeeded', result: { hi: 1 }, attempts: 1, worker: 'node-b' })
  t.notOk(done.headers.location, 'no Location for a finished job')
  t.same(service.calls.submit.at(-1)?.opts, { waitMs: 1000 })

  const failed = await inject({ method: 'POST', url: '/jobs?wait=1000', payload: { function: 'fail' } })
  t.equal(failed.statusCode, 200, 'a failed job is finished too')
  t.match(failed.json(), { state: 'failed', error: { message: 'boom' } })

  const pending = await inject({
    method: 'POST',
    url: '/jobs?wait=1000',
    payload: { function: 'sleep', payload: { ms: 10_000 } },
  })
  t.equal(pending.statusCode, 202)
  t.equal(pending.json().state, 'queued')
  t.equal(pending.headers.location, `/jobs/${pending.json().id}`)

  const max = await inject({ method: 'POST', url: '/jobs?wait=5000', payload: { function: 'sleep' } })
  t.equal(max.statusCode, 202, 'wait = maxWaitMs is allowed')
  const zero = await inject({ method: 'POST', url: '/jobs?wait=0', payload: { function: 'echo' } })
  t.equal(zero.statusCode, 202, 'wait=0 does not wait')
  t.same(service.calls.submit.at(-1)?.opts, { waitMs: 0 })

  const before = service.calls.submit.length
  for (const q of ['wait=5001', 'wait=-1', 'wait=abc', 'wait=1.5', 'wait=1&wait=2', 'other=1']) {
    const res = await inject({ method: 'POST', url: `/jobs?${q}`, payload: { function: 'echo' } })
    t.equal(res.statusCode, 400, q)
    const body = errorShape(res)
    t.equal(body.code, errors.VALIDATION.code, q)
    t.match(body.message, /querystring\.(wait|other)/, `${q}: names the parameter`)
  }
  t.equal(service.calls.submit.length, before, 'a bad query never reaches the service')
})

t.test('JobSpec limits: in range accepted, out of range / wrong type → 400 naming the field', async (t) => {
  const { inject, service } = await makeApp(t)
  const ok = [
    { priority: MIN_PRIORITY },
    { priority: MAX_PRIORITY },
    { delayMs: 0 },
    { delayMs: MAX_DELAY_MS },
    { timeoutMs: 1 },
    { timeoutMs: MAX_TIMEOUT_MS },
    { maxAttempts: 1 },
    { maxAttempts: MAX_MAX_ATTEMPTS },
    { idempotencyKey: 'x' },
    { idempotencyKey: 'k'.repeat(256) },
  ]
  for (const extra of ok) {
    const res = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo', ...extra } })
    t.equal(res.statusCode, 202, JSON.stringify(extra))
  }
  const before = service.calls.submit.length
  const bad: [Record<string, unknown>, string][] = [
    [{ priority: MIN_PRIORITY - 1 }, 'priority'],
    [{ priority: MAX_PRIORITY + 1 }, 'priority'],
    [{ priority: 1.5 }, 'priority'],
    [{ priority: '5' }, 'priority'],
    [{ delayMs: -1 }, 'delayMs'],
    [{ delayMs: MAX_DELAY_MS + 1 }, 'delayMs'],
    [{ delayMs: null }, 'delayMs'],
    [{ timeoutMs: 0 }, 'timeoutMs'],
    [{ timeoutMs: MAX_TIMEOUT_MS + 1 }, 'timeoutMs'],
    [{ timeoutMs: true }, 'timeoutMs'],
    [{ maxAttempts: 0 }, 'maxAttempts'],
    [{ maxAttempts: MAX_MAX_ATTEMPTS + 1 }, 'maxAttempts'],
    [{ maxAttempts: [1] }, 'maxAttempts'],
    [{ idempotencyKey: '' }, 'idempotencyKey'],
    [{ idempotencyKey: 'k'.repeat(257) }, 'idempotencyKey'],
    [{ idempotencyKey: 7 }, 'idempotencyKey'],
    [{ function: 'Echo' }, 'function'],
    [{ function: '1echo' }, 'function'],
    [{ function: '' }, 'function'],
    [{ function: 'a'.repeat(65) }, 'function'],
    [{ function: '../etc/passwd' }, 'function'],
    [{ function: 'echo.js' }, 'function'],
    [{ function: 42 }, 'function'],
    [{ function: null }, 'function'],
    [{ maxattempts: 3 }, 'maxattempts'],
    [{ extra: true }, 'extra'],
  ]
  for (const [extra, field] of bad) {
    const res = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo', ...extra } })
    t.equal(res.statusCode, 400, JSON.stringify(extra))
    const body = errorShape(res)
    t.equal(body.code, errors.VALIDATION.code)
    t.match(body.message, `body.${field}`, `${JSON.stringify(extra)} → ${body.message}`)
    t.equal(body.details?.field, `body.${field}`)
  }
  const missing = await inject({ method: 'POST', url: '/jobs', payload: { payload: 1 } })
  t.equal(missing.statusCode, 400)
  t.equal(errorShape(missing).message, 'body.function is required')
  t.equal(service.calls.submit.length, before, 'no invalid spec reached the service')
})

t.test('unknown function → 404 BOSUN_ERR_UNKNOWN_FUNCTION', async (t) => {
  const { inject } = await makeApp(t)
  const res = await inject({ method: 'POST', url: '/jobs', payload: { function: 'nosuch' } })
  t.equal(res.statusCode, 404)
  t.equal(errorShape(res).code, errors.UNKNOWN_FUNCTION.code)
  t.match(res.json().message, /nosuch/)
})

t.test('POST /jobs/batch: 202 with { id, state } in order', async (t) => {
  const { inject, service } = await makeApp(t)
  const jobs = [
    { function: 'echo', payload: 1 },
    { function: 'sleep', payload: { ms: 5 }, priority: 3 },
    { function: 'echo', idempotencyKey: 'b' },
  ]
  const res = await inject({ method: 'POST', url: '/jobs/batch', payload: { jobs } })
  t.equal(res.statusCode, 202)
  const body = res.json()
  t.same(Object.keys(body), ['jobs'])
  t.equal(body.jobs.length, 3)
  for (const item of body.jobs) t.same(Object.keys(item).sort(), ['id', 'state'])
  t.same(
    body.jobs.map((j: { id: string }) => service.jobs.get(j.id)?.function),
    ['echo', 'sleep', 'echo'],
    'in input order',
  )
  t.same(service.calls.submitBatch, [jobs], 'the specs are passed through unchanged')

  const full = Array.from({ length: 1000 }, (_, i) => ({ function: 'echo', payload: i }))
  const big = await inject({ method: 'POST', url: '/jobs/batch', payload: { jobs: full } })
  t.equal(big.statusCode, 202, '1,000 jobs is allowed')
  t.equal(big.json().jobs.length, 1000)
})

t.test('POST /jobs/batch: the whole batch is validated first and rejected whole, naming the index', async (t) => {
  const { inject, service } = await makeApp(t)
  const cases: [unknown[], number, RegExp][] = [
    [
      [{ function: 'echo' }, { function: 'echo' }, { function: 'echo', priority: 'high' }],
      2,
      /^jobs\[2\] is invalid: priority /,
    ],
    [[{ function: 'echo' }, { function: 'echo', surprise: 1 }], 1, /^jobs\[1\] is invalid: surprise is not allowed/],
    [[{ payload: 1 }, { function: 'echo' }], 0, /^jobs\[0\] is invalid: function is required/],
    [[{ function: 'echo' }, 'not an object'], 1, /^jobs\[1\] is invalid/],
    [
      [{ function: 'echo' }, { function: 'echo', maxAttempts: 0 }, { function: 'BAD' }],
      1,
      /^jobs\[1\] is invalid: maxAttempts/,
    ],
  ]
  for (const [jobs, index, message] of cases) {
    const res = await inject({ method: 'POST', url: '/jobs/batch', payload: { jobs } })
    t.equal(res.statusCode, 400, JSON.stringify(jobs))
    const body = errorShape(res)
    t.equal(body.code, errors.VALIDATION.code)
    t.match(body.message, message)
    t.equal(body.details?.index, index, 'details.index names the first bad item')
  }
  for (const payload of [
    { jobs: [] },
    { jobs: Array.from({ length: 1001 }, () => ({ function: 'echo' })) },
    {},
    { jobs: {} },
    { jobs: [{ function: 'echo' }], extra: 1 },
    [],
  ]) {
    const res = await inject({ method: 'POST', url: '/jobs/batch', payload })
    t.equal(res.statusCode, 400)
    t.equal(errorShape(res).code, errors.VALIDATION.code)
  }
  t.equal(service.calls.submitBatch.length, 0, 'no part of a bad batch reached the service')
  t.equal(service.jobs.size, 0)
})

t.test('POST /jobs/batch: a service error for one item keeps its details.index', async (t) => {
  const { inject } = await makeApp(t)
  const res = await inject({
    method: 'POST',
    url: '/jobs/batch',
    payload: { jobs: [{ function: 'echo' }, { function: 'nosuch' }] },
  })
  t.equal(res.statusCode, 404)
  const body = errorShape(res)
  t.equal(body.code, errors.UNKNOWN_FUNCTION.code)
  t.same(body.details, { index: 1 })
})

t.test('GET /jobs/:id: 200 with the job, 404 unknown', async (t) => {
  const { inject, service } = await makeApp(t)
  const job = service.seed({
    function: 'echo',
    state: 'succeeded',
    result: { ok: true },
    worker: 'node-b',
    cancelRequested: false,
  })
  const res = await inject({ method: 'GET', url: `/jobs/${job.id}` })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { id: job.id, state: 'succeeded', result: { ok: true }, worker: 'node-b' })
  t.notOk('epoch' in res.json())
  t.notOk('cancelRequested' in res.json())

  const unknown = await inject({ method: 'GET', url: '/jobs/J99999999' })
  t.equal(unknown.statusCode, 404)
  t.equal(errorShape(unknown).code, errors.JOB_NOT_FOUND.code)
  t.same(service.calls.get, [job.id, 'J99999999'])

  for (const id of ['a.b', '%2F', 'x%20y', '%F0%9F%98%80', 'x%00y']) {
    const odd = await inject({ method: 'GET', url: `/jobs/${id}` })
    t.equal(odd.statusCode, 404, `${id}: not a job id`)
    t.equal(errorShape(odd).code, errors.JOB_NOT_FOUND.code)
  }
  t.equal(service.calls.get.length, 2, 'ids outside JOB_ID_PATTERN never reach the service')
  const long = await inject({ method: 'GET', url: `/jobs/${'a'.repeat(300)}` })
  t.equal(long.statusCode, 400, 'over-long path parameter')
  errorShape(long)
})

t.test('GET /jobs/:id?wait: a long poll bounded like POST ?wait; bad values are 400s', async (t) => {
  const { inject, service } = await makeApp(t, { maxWaitMs: 5000 })
  const job = service.seed({ function: 'echo', state: 'running' })
  const res = await inject({ method: 'GET', url: `/jobs/${job.id}?wait=1500` })
  t.equal(res.statusCode, 200, 'a read is 200 whether or not the job finished')
  t.equal(res.json().state, 'running')
  t.same(service.readWaits, [1500], 'the wait reaches the service')
  for (const bad of ['5001', '-1', '1.5', 'soon', ''])
    t.equal((await inject({ method: 'GET', url: `/jobs/${job.id}?wait=${bad}` })).statusCode, 400, `wait=${bad}`)
  t.equal((await inject({ method: 'GET', url: `/jobs/${job.id}?other=1` })).statusCode, 400, 'unknown parameter')
  t.same(service.readWaits, [1500], 'no bad read reached the service')
})

t.test('GET /jobs: filters and limit passed to the service, newest first', async (t) => {
  const { inject, service } = await makeApp(t)
  const a = service.seed({ function: 'echo' })
  const b = service.seed({ function: 'sleep' })
  const c = service.seed({ function: 'echo', state: 'succeeded' })
  const all = await inject({ method: 'GET', url: '/jobs' })
  t.equal(all.statusCode, 200)
  t.same(
    all.json().jobs.map((j: { id: string }) => j.id),
    [c.id, b.id, a.id],
    'newest first',
  )
  t.same(service.calls.list.at(-1), { limit: 100 }, 'default limit 100')

  const filtered = await inject({ method: 'GET', url: '/jobs?state=queued&function=echo&limit=5' })
  t.equal(filtered.statusCode, 200)
  t.same(
    filtered.json().jobs.map((j: { id: string }) => j.id),
    [a.id],
  )
  t.same(service.calls.list.at(-1), { state: 'queued', function: 'echo', limit: 5 })

  t.equal((await inject({ method: 'GET', url: '/jobs?limit=1000' })).statusCode, 200)
  const calls = service.calls.list.length
  for (const q of ['limit=0', 'limit=1001', 'limit=ten', 'state=done', 'function=Bad!', 'sort=asc']) {
    const res = await inject({ method: 'GET', url: `/jobs?${q}` })
    t.equal(res.statusCode, 400, q)
    t.match(errorShape(res).message, /^querystring\./)
  }
  const states = await inject({ method: 'GET', url: '/jobs?state=nope' })
  t.match(states.json().message, 'queued, running, succeeded, failed, cancelled', 'lists the allowed states')
  t.equal(service.calls.list.length, calls, 'bad queries never reach the service')
})

t.test(
  'DELETE /jobs/:id: 200 cancelled, 202 while a running job stops, 200 unchanged when final, 404 unknown',
  async (t) => {
    const { inject, service } = await makeApp(t)
    const queued = service.seed({ function: 'sleep' })
    const running = service.seed({ function: 'sleep', state: 'running', attempts: 1, worker: 'node-b' })
    const done = service.seed({
      function: 'echo',
      state: 'succeeded',
      result: 1,
      finishedAt: '2024-01-01T00:00:09.000Z',
    })

    const q = await inject({ method: 'DELETE', url: `/jobs/${queued.id}` })
    t.equal(q.statusCode, 200)
    t.equal(q.json().state, 'cancelled')

    const r = await inject({ method: 'DELETE', url: `/jobs/${running.id}` })
    t.equal(r.statusCode, 202)
    t.equal(r.json().state, 'running')

    const d = await inject({
      method: 'DELETE',
      url: `/jobs/${done.id}`,
      headers: { 'content-type': 'application/json' },
    })
    t.equal(d.statusCode, 200, 'a DELETE with a JSON content type and no body is fine')
    t.same(d.json(), publicJob(done), 'a final job is returned unchanged')

    const u = await inject({ method: 'DELETE', url: '/jobs/J99999999' })
    t.equal(u.statusCode, 404)
    t.equal(errorShape(u).code, errors.JOB_NOT_FOUND.code)
    t.same(service.calls.cancel, [queued.id, running.id, done.id, 'J99999999'])
  },
)
