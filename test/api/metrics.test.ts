/**
 * GET /metrics on the API (inject, FakeJobService): Prometheus text with the HTTP histogram by route
 * pattern and the submitted counter per function; behind bearer auth when tokens are set; in the
 * OpenAPI document. Cluster gauges come from the sources the app is given.
 */
import t from 'tap'
import { ApiMetrics } from '../../runner/metrics/api-metrics.js'
import { makeApp } from './helpers.js'

const TOKEN = 'token-mmmmmmmmmmmmmmmm'

/** The value of the sample `name{labels}` (labels as printed, in order), or undefined. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  return line === undefined ? undefined : Number(line.slice(prefix.length))
}

t.test('text format, HTTP histogram by route pattern, submitted counter per function', async (t) => {
  const { inject } = await makeApp(t)
  const submit = await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo', payload: 1 } })
  t.equal(submit.statusCode, 202)
  const batch = await inject({
    method: 'POST',
    url: '/jobs/batch',
    payload: { jobs: [{ function: 'echo' }, { function: 'sleep' }, { function: 'echo' }] },
  })
  t.equal(batch.statusCode, 202)
  const refused = await inject({ method: 'POST', url: '/jobs', payload: { function: 'nope' } })
  t.equal(refused.statusCode, 404, 'an unknown function is not counted')
  await inject({ method: 'GET', url: `/jobs/${submit.json<{ id: string }>().id}` })
  await inject({ method: 'GET', url: '/no/such/route/abc123' })

  const res = await inject({ method: 'GET', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  const text = res.body
  t.equal(sample(text, 'bosun_jobs_submitted_total', 'function="echo"'), 3)
  t.equal(sample(text, 'bosun_jobs_submitted_total', 'function="sleep"'), 1)
  t.equal(sample(text, 'bosun_jobs_submitted_total', 'function="nope"'), undefined)
  const count = (labels: string) => sample(text, 'bosun_http_request_duration_seconds_count', labels)
  t.equal(count('method="POST",route="/jobs",status="202"'), 1)
  t.equal(count('method="POST",route="/jobs/batch",status="202"'), 1)
  t.equal(count('method="POST",route="/jobs",status="404"'), 1)
  t.equal(count('method="GET",route="/jobs/:id",status="200"'), 1, 'the route pattern, not the id')
  t.equal(count('method="GET",route="unmatched",status="404"'), 1, 'an unknown URL is one label value')
  t.notMatch(text, /abc123/, 'never the raw URL')
  t.match(text, /# TYPE bosun_http_request_duration_seconds histogram/)
  t.match(text, /bosun_http_request_duration_seconds_bucket\{le="0\.005",method="POST",route="\/jobs",status="202"\}/)
  t.match(text, /^process_cpu_user_seconds_total /m, 'default Node process metrics')
  t.match(text, /^nodejs_eventloop_lag_seconds /m)
  t.notMatch(text, /bosun_workers/, 'no cluster gauges without cluster sources')
})

t.test('two apps in one process keep separate registries', async (t) => {
  const a = await makeApp(t)
  const b = await makeApp(t)
  await a.inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })
  const textB = (await b.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(textB, 'bosun_jobs_submitted_total', 'function="echo"'), undefined)
  const textA = (await a.inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(textA, 'bosun_jobs_submitted_total', 'function="echo"'), 1)
})

t.test('cluster gauges read from their sources at scrape time', async (t) => {
  let load: { queued: number; running: number } | undefined
  let epoch: number | undefined
  const metrics = new ApiMetrics({
    defaultMetrics: false,
    cluster: { workers: () => Promise.resolve(3), bossEpoch: () => Promise.resolve(epoch), bossLoad: () => load },
  })
  const { inject } = await makeApp(t, { metrics })
  let text = (await inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(text, 'bosun_workers'), 3)
  t.equal(sample(text, 'bosun_boss_epoch'), 0, 'no boss: 0')
  t.equal(sample(text, 'bosun_jobs_queued'), 0, 'no report yet: 0')
  t.notMatch(text, /^process_cpu/m, 'default metrics off')
  epoch = 7
  load = { queued: 42, running: 5 }
  text = (await inject({ method: 'GET', url: '/metrics' })).body
  t.equal(sample(text, 'bosun_boss_epoch'), 7)
  t.equal(sample(text, 'bosun_jobs_queued'), 42)
  t.equal(sample(text, 'bosun_jobs_running'), 5)
})

t.test('with BOSUN_API_TOKENS: 401 without a token, 200 with one', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: [TOKEN] })
  const denied = await inject({ method: 'GET', url: '/metrics' })
  t.equal(denied.statusCode, 401)
  t.equal(denied.json<{ code: string }>().code, 'BOSUN_ERR_UNAUTHORIZED')
  t.match(denied.headers['www-authenticate'], /^Bearer/)
  const wrong = await inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}x` } })
  t.equal(wrong.statusCode, 401)
  const ok = await inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(ok.statusCode, 200)
  t.equal(
    sample(ok.body, 'bosun_http_request_duration_seconds_count', 'method="GET",route="/metrics",status="401"'),
    2,
    'refused scrapes are timed too',
  )
})

t.test('in the OpenAPI document, tag metrics, with the bearer requirement when auth is on', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: [TOKEN] })
  const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{
    tags: { name: string }[]
    paths: Record<string, { get?: { tags: string[]; security?: unknown; responses: Record<string, unknown> } }>
  }>()
  const op = doc.paths['/metrics']?.get
  t.ok(op, 'GET /metrics is documented')
  t.same(op?.tags, ['metrics'])
  t.same(op?.security, [{ bearer: [] }])
  t.ok(op?.responses['200'] && op.responses['401'])
  t.ok(
    doc.tags.some((tag) => tag.name === 'metrics'),
    'the metrics tag is declared',
  )
})

t.test('API_METRICS=false: no /metrics route, every other route unchanged', async (t) => {
  const { inject } = await makeApp(t, { metrics: false })
  t.equal((await inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })).statusCode, 202)
  t.equal((await inject({ method: 'GET', url: '/cluster' })).statusCode, 200)
  t.equal((await inject({ method: 'GET', url: '/metrics' })).statusCode, 404)
  const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, unknown> }>()
  t.notOk('/metrics' in doc.paths, 'and none in the OpenAPI document')
})
