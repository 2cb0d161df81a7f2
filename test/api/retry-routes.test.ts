/** The retry routes on a fake service: bodies validated, status codes, what reaches the service. */
import t from 'tap'
import { errorShape, makeApp } from './helpers.js'

t.test('POST /jobs/:id/retry: 202 with the job queued again; body optional; options passed on', async (t) => {
  const { inject, service } = await makeApp(t)
  const failed = service.seed({ function: 'fail', state: 'failed', error: { message: 'boom' } })
  const res = await inject({ method: 'POST', url: `/jobs/${failed.id}/retry` })
  t.equal(res.statusCode, 202, res.body)
  t.match(res.json(), { id: failed.id, state: 'queued', run: 1, attempts: 0 })
  const cancelled = service.seed({ function: 'sleep', state: 'cancelled' })
  const res2 = await inject({
    method: 'POST',
    url: `/jobs/${cancelled.id}/retry`,
    payload: { maxAttempts: 4, requestId: 'r-1' },
  })
  t.equal(res2.statusCode, 202)
  t.equal(res2.json().maxAttempts, 4)
  t.same(service.retries.at(-1), { id: cancelled.id, opts: { maxAttempts: 4, requestId: 'r-1' } })
})

t.test('POST /jobs/:id/retry: 409 unless failed or cancelled, 404 unknown, 400 bad body', async (t) => {
  const { inject, service } = await makeApp(t)
  const ok = service.seed({ function: 'echo', state: 'succeeded', result: 1 })
  const running = service.seed({ function: 'sleep', state: 'running' })
  for (const job of [ok, running]) {
    const res = await inject({ method: 'POST', url: `/jobs/${job.id}/retry` })
    t.equal(res.statusCode, 409)
    t.match(errorShape(res), { code: 'BOSUN_ERR_JOB_NOT_RETRYABLE', details: { id: job.id, state: job.state } })
  }
  t.equal((await inject({ method: 'POST', url: '/jobs/J99999999/retry' })).statusCode, 404)
  const failed = service.seed({ function: 'fail', state: 'failed' })
  for (const payload of [{ maxAttempts: 0 }, { maxAttempts: 101 }, { requestId: '' }, { nope: 1 }]) {
    const res = await inject({ method: 'POST', url: `/jobs/${failed.id}/retry`, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.equal(errorShape(res).code, 'BOSUN_ERR_VALIDATION')
  }
  t.equal(service.jobs.get(failed.id)!.state, 'failed', 'a bad request changes nothing')
})

t.test('POST /jobs/retry: answers how many; the query is validated and passed on', async (t) => {
  const { inject, service } = await makeApp(t)
  for (let i = 0; i < 3; i++) service.seed({ function: 'fail', state: 'failed' })
  service.seed({ function: 'echo', state: 'failed' })
  const res = await inject({
    method: 'POST',
    url: '/jobs/retry',
    payload: { state: 'failed', function: 'fail', limit: 2, before: '2030-01-01T00:00:00Z', requestId: 'bulk-1' },
  })
  t.equal(res.statusCode, 200, res.body)
  t.equal(res.json().retried, 2)
  t.equal(res.json().ids.length, 2)
  t.match(service.retries[0]!.query, {
    state: 'failed',
    function: 'fail',
    limit: 2,
    before: '2030-01-01T00:00:00Z',
    requestId: 'bulk-1',
  })
  const dflt = await inject({ method: 'POST', url: '/jobs/retry', payload: { state: 'failed' } })
  t.equal(dflt.statusCode, 200)
  t.equal(service.retries.filter((r) => r.query).at(-1)!.query!.limit, 100, 'limit defaults to 100')
  for (const payload of [
    {},
    { state: 'succeeded' },
    { state: 'failed', limit: 0 },
    { state: 'failed', limit: 1001 },
    { state: 'failed', before: 'yesterday' },
    { state: 'failed', function: 'Bad Name' },
    { state: 'failed', extra: true },
  ]) {
    const bad = await inject({ method: 'POST', url: '/jobs/retry', payload })
    t.equal(bad.statusCode, 400, JSON.stringify(payload))
  }
})
