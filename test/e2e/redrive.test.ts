/**
 * Redrive end to end (README "Dead letters and redrive"): real ZooKeeper, nats-server, workers and
 * the API. A failed job keeps its attempt history; retried, it runs again under its id and keeps
 * that history; a retry of a succeeded or running job is a 409; a request id makes a retry
 * idempotent; 1,000 failed jobs are redriven in bulk, each exactly once — also when the boss is
 * killed with kill -9 right after it reopened them.
 */
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('redrive'),
  workers: 3,
  concurrency: 16,
  functionsDir: e2eFunctionsDir(),
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

const flipFile = () => join(tmpdir(), `${uniqueName('flip')}.txt`)
const runsIn = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [])

/** Every job of `fn` in `state` (listing pages of 1,000). */
async function listAll(state: string, fn: string): Promise<any[]> {
  const out: any[] = []
  let cursor: string | undefined
  do {
    const q = `/jobs?state=${state}&function=${fn}&limit=1000${cursor ? `&cursor=${cursor}` : ''}`
    const r = await cluster.get(q)
    if (r.status !== 200) throw new Error(`GET ${q}: ${r.status}`)
    out.push(...r.body.jobs)
    cursor = r.body.next
  } while (cursor)
  return out
}

async function submitFlips(n: number, file: string): Promise<string[]> {
  const r = await cluster.post('/jobs/batch', {
    jobs: Array.from({ length: n }, () => ({ function: 'flip', payload: { file } })),
  })
  if (r.status !== 202) throw new Error(`batch: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body.jobs.map((j: { id: string }) => j.id)
}

t.test('a failed job keeps its history; retried, it runs again under its id and keeps it', async (t) => {
  const file = flipFile()
  const sub = await cluster.post('/jobs', { function: 'flip', payload: { file }, maxAttempts: 2 })
  t.equal(sub.status, 202)
  const id = sub.body.id
  const failed = await cluster.waitJob(id)
  t.equal(failed.state, 'failed')
  t.same(
    failed.history.map((e: any) => [e.run, e.attempt, e.outcome]),
    [
      [0, 1, 'failed'],
      [0, 2, 'failed'],
    ],
    'both attempts in the history',
  )
  for (const e of failed.history) {
    t.match(e, { worker: String, epoch: Number, startedAt: String, finishedAt: String, durationMs: Number })
    t.match(e.error.message, /does not exist yet/)
  }

  writeFileSync(file, '')
  const retry = await cluster.post(`/jobs/${id}/retry`, { requestId: 'fix-1', maxAttempts: 1 })
  t.equal(retry.status, 202, JSON.stringify(retry.body))
  t.match(retry.body, { id, state: 'queued', run: 1, attempts: 0, maxAttempts: 1 })
  const done = await cluster.waitJob(id)
  t.equal(done.state, 'succeeded')
  t.equal(done.run, 1)
  t.same(
    done.history.map((e: any) => [e.run, e.attempt, e.outcome]),
    [
      [0, 1, 'failed'],
      [0, 2, 'failed'],
      [1, 1, 'succeeded'],
    ],
  )
  t.equal(runsIn(file).length, 1, 'ran once after the retry')

  const repeat = await cluster.post(`/jobs/${id}/retry`, { requestId: 'fix-1' })
  t.equal(repeat.status, 202, 'the same request is answered again')
  t.equal(repeat.body.state, 'succeeded', 'with the job as it stands')
  const other = await cluster.post(`/jobs/${id}/retry`, { requestId: 'fix-2' })
  t.equal(other.status, 409)
  t.equal(other.body.code, 'BOSUN_ERR_JOB_NOT_RETRYABLE')
  t.equal(other.body.details.state, 'succeeded')
  t.equal(runsIn(file).length, 1, 'never a second run')

  const failedList = await listAll('failed', 'flip')
  t.notOk(
    failedList.some((j) => j.id === id),
    'no longer listed as failed',
  )
  const succeeded = await listAll('succeeded', 'flip')
  t.equal(succeeded.filter((j) => j.id === id).length, 1, 'listed once as succeeded')
})

t.test('a retried job with a large payload runs with its whole payload', async (t) => {
  const file = flipFile()
  const payload = { file, pad: 'x'.repeat(100_000) } // over the boss's 64 KB inline limit
  const sub = await cluster.post('/jobs', { function: 'flip', payload })
  t.equal((await cluster.waitJob(sub.body.id)).state, 'failed')
  writeFileSync(file, '')
  t.equal((await cluster.post(`/jobs/${sub.body.id}/retry`, {})).status, 202)
  const done = await cluster.waitJob(sub.body.id)
  t.equal(done.state, 'succeeded', JSON.stringify(done.error ?? {}))
  t.same(done.result, { ok: true, bytes: JSON.stringify(payload).length })
})

t.test('a running job is not retried (409); unknown ids are 404', async (t) => {
  const sub = await cluster.post('/jobs', { function: 'stubborn', payload: { ms: 60_000 } })
  await waitFor(async () => (await cluster.get(`/jobs/${sub.body.id}`)).body.state === 'running', {
    what: 'running',
  })
  const r = await cluster.post(`/jobs/${sub.body.id}/retry`, {})
  t.equal(r.status, 409)
  t.equal(r.body.details.state, 'running')
  t.equal((await cluster.post('/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV-000/retry', {})).status, 404)
  await cluster.del(`/jobs/${sub.body.id}`)
  const cancelled = await cluster.waitJob(sub.body.id)
  t.equal(cancelled.state, 'cancelled')
})

t.test('1,000 failed jobs redriven in bulk: each runs once more; the same request answers the same', async (t) => {
  const file = flipFile()
  const ids = await submitFlips(1000, file)
  await waitFor(async () => (await listAll('failed', 'flip')).filter((j) => ids.includes(j.id)).length === 1000, {
    what: '1,000 failed',
    timeoutMs: 60_000,
    intervalMs: 500,
  })
  writeFileSync(file, '')
  const body = { state: 'failed', function: 'flip', limit: 1000, requestId: 'bulk-1' }
  const r = await cluster.post('/jobs/retry', body)
  t.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300))
  t.equal(r.body.retried, 1000)
  t.same([...r.body.ids].sort(), [...ids].sort(), 'exactly the failed ones')
  await waitFor(() => runsIn(file).length >= 1000, { what: '1,000 runs', timeoutMs: 90_000, intervalMs: 250 })
  const again = await cluster.post('/jobs/retry', body)
  t.same(again.body, r.body, 'the same request id: the same answer')
  await new Promise((res) => setTimeout(res, 1000))
  const runs = runsIn(file).map((l) => l.split(' ')[0])
  t.equal(runs.length, 1000, 'each ran once: no second run')
  t.equal(new Set(runs).size, 1000)
  const succeeded = (await listAll('succeeded', 'flip')).filter((j) => ids.includes(j.id))
  t.equal(succeeded.length, 1000, 'all succeeded, each listed once')
  t.ok(
    succeeded.every((j) => j.run === 1 && j.history.length === 2),
    'run 1 with both attempts in the history',
  )
})

t.test('kill -9 of the boss right after a bulk redrive: every job runs exactly once more', async (t) => {
  const file = flipFile()
  const ids = await submitFlips(300, file)
  await waitFor(async () => (await listAll('failed', 'flip')).filter((j) => ids.includes(j.id)).length === 300, {
    what: '300 failed',
    timeoutMs: 60_000,
    intervalMs: 500,
  })
  writeFileSync(file, '')
  const boss = await cluster.bossProcess()
  const r = await cluster.post('/jobs/retry', { state: 'failed', function: 'flip', limit: 1000, requestId: 'k9' })
  t.equal(r.status, 200)
  t.equal(r.body.retried, 300)
  await boss.kill()
  await waitFor(() => runsIn(file).length >= 300, { what: '300 runs', timeoutMs: 90_000, intervalMs: 250 })
  await waitFor(async () => (await listAll('succeeded', 'flip')).filter((j) => ids.includes(j.id)).length === 300, {
    what: '300 succeeded',
    timeoutMs: 60_000,
    intervalMs: 500,
  })
  const runs = runsIn(file).map((l) => l.split(' ')[0])
  t.equal(runs.length, 300, 'no job ran twice across the boss change')
  t.equal(new Set(runs).size, 300)
})
