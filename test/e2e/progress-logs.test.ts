/**
 * ctx.progress and kept ctx.log lines on a real cluster (API + 2 workers, JOB_LOG_MAX_LINES=8), for a
 * function on worker threads and one inline: `progress` while the job runs and in its final record,
 * GET /jobs/:id/logs with a failed attempt's lines before the retry's, the line cap, 404s, and
 * garbage on a job's LIVE subject answered as no lines (with a warning), never a 500.
 */
import t from 'tap'
import { connect } from '@nats-io/transport-node'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const MAX_LINES = 8
const zk = await startZooKeeper()
const nats = await startNats()
const name = uniqueName('live')
const cluster = new TestCluster({
  zk,
  nats,
  cluster: name,
  workers: 2,
  functionsDir: e2eFunctionsDir(),
  env: { JOB_LOG_MAX_LINES: String(MAX_LINES) },
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

for (const fn of ['report', 'report-inline']) {
  t.test(`${fn}: progress while running and in the final record; the lines of both attempts in order`, async (t) => {
    const payload = { steps: [10, 50], lines: 2, gapMs: 1200, failAttempts: 1 }
    const r = await cluster.post('/jobs', { function: fn, payload, maxAttempts: 2 })
    t.equal(r.status, 202)
    const id: string = r.body.id
    const seen = new Set<unknown>()
    const final = await waitFor(
      async () => {
        const g = await cluster.get(`/jobs/${id}`)
        if (g.body.state === 'running' && g.body.progress !== undefined) seen.add(g.body.progress)
        return ['succeeded', 'failed'].includes(g.body.state) ? g.body : undefined
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `job ${id} final` },
    )
    t.ok(seen.has(10) || seen.has(50), `GET /jobs/:id showed progress while running: ${[...seen].join(', ')}`)
    t.match(final, { state: 'succeeded', attempts: 2, progress: 50, result: { attempt: 2 } })
    const logs = await cluster.get(`/jobs/${id}/logs`)
    t.equal(logs.status, 200)
    t.same(
      logs.body.lines.map((l: { attempt: number; msg: string }) => `${l.attempt}: ${l.msg}`),
      [
        '1: step 10 attempt 1',
        '1: step 50 attempt 1',
        '1: line 1 attempt 1',
        '1: line 2 attempt 1',
        '2: step 10 attempt 2',
        '2: step 50 attempt 2',
        '2: line 1 attempt 2',
        '2: line 2 attempt 2',
      ],
      'the failed attempt’s lines, then the retry’s',
    )
    t.equal(logs.body.jobId, id)
    t.equal(logs.body.truncated, false)
    t.match(logs.body.lines[0], { level: 'info', fields: { step: 10 }, time: /^\d{4}-/ })
  })

  t.test(`${fn}: JOB_LOG_MAX_LINES keeps the last lines, truncated`, async (t) => {
    const r = await cluster.post('/jobs?wait=20000', { function: fn, payload: { lines: 12 } })
    t.equal(r.status, 200)
    t.notOk('progress' in r.body, 'no progress reported, none in the record')
    const logs = await cluster.get(`/jobs/${r.body.id}/logs`)
    t.same(
      logs.body.lines.map((l: { msg: string }) => l.msg),
      Array.from({ length: MAX_LINES }, (_, i) => `line ${i + 5} attempt 1`),
    )
    t.equal(logs.body.truncated, true)
  })
}

t.test('a bad progress value fails the job with its TypeError', async (t) => {
  const r = await cluster.post('/jobs?wait=20000', { function: 'report', payload: { bad: 'above' } })
  t.match(r.body, {
    state: 'failed',
    error: { name: 'TypeError', code: 'BOSUN_ERR_BAD_PROGRESS', message: /^ctx\.progress: .*0–100, got 101/ },
  })
})

t.test('logs: 404 for an unknown job, empty for one that never logged', async (t) => {
  const unknown = await cluster.get('/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV-000/logs')
  t.equal(unknown.status, 404)
  t.match(unknown.body, { statusCode: 404, code: 'BOSUN_ERR_JOB_NOT_FOUND' })
  t.equal((await cluster.get('/jobs/not-an-id/logs')).status, 404)
  const r = await cluster.post('/jobs?wait=20000', { function: 'echo', payload: 1 })
  const logs = await cluster.get(`/jobs/${r.body.id}/logs`)
  t.same(logs, { status: 200, body: { jobId: r.body.id, lines: [], truncated: false } })
})

t.test('garbage on a job’s LIVE subject: answered as nothing stored, with a warning', async (t) => {
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const r = await cluster.post('/jobs?wait=20000', { function: 'echo', payload: 2 })
  await nc.request(`bosun.${name}.live.${r.body.id}`, new TextEncoder().encode('{"v":1,"jobId":"nope"'))
  const logs = await cluster.get(`/jobs/${r.body.id}/logs`)
  t.same(logs, { status: 200, body: { jobId: r.body.id, lines: [], truncated: false } })
  t.equal((await cluster.get(`/jobs/${r.body.id}`)).status, 200)
  // An unfinished job with garbage as its live record: no progress, no error.
  const slow = await cluster.post('/jobs', { function: 'sleep', payload: { ms: 1500 } })
  await nc.request(`bosun.${name}.live.${slow.body.id}`, new TextEncoder().encode('garbage'))
  const g = await cluster.get(`/jobs/${slow.body.id}`)
  t.equal(g.status, 200)
  t.notOk('progress' in g.body)
  t.match(cluster.api.logs(), /a live record that is not one/)
  await cluster.waitJob(slow.body.id)
})
