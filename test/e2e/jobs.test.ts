/**
 * The job runner end to end: real ZooKeeper, real nats-server, 3 worker processes and the API
 * process, driven over HTTP exactly as a user would.
 */
import t from 'tap'
import { connect as natsConnect } from '@nats-io/transport-node'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper()
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
const cluster = new TestCluster({ zk, nats, cluster: uniqueName('e2e'), workers: 3, concurrency: 4, functionsDir })
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

function runsFile(): string {
  const f = join(tmpdir(), `${uniqueName('runs')}.txt`)
  writeFileSync(f, '')
  return f
}
function runs(file: string): string[][] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
}

t.test('GET /cluster shows one boss and the workers with their functions', async (t) => {
  const c = await cluster.clusterState()
  t.ok(c.boss, 'a boss is elected')
  t.ok(c.boss!.epoch >= 1, 'with an epoch')
  t.equal(c.workers.length, 2, 'the other two workers run jobs')
  t.notOk(
    c.workers.some((w) => w.id === c.boss!.id),
    'the boss does not run jobs',
  )
  for (const w of c.workers) {
    t.ok(w.functions.includes('echo'))
    t.equal(w.capacity, 4)
  }
})

t.test('500 echo jobs all succeed with correct results', async (t) => {
  const ids: string[] = []
  const n = 500
  let next = 0
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (next < n) {
        const i = next++
        const r = await cluster.post('/jobs', { function: 'echo', payload: { i } })
        t.equal(r.status, 202)
        ids[i] = r.body.id
      }
    }),
  )
  t.equal(new Set(ids).size, n, 'distinct ids')
  await waitFor(
    async () => {
      const r = await cluster.get(`/jobs?state=succeeded&function=echo&limit=1000`)
      return r.body.jobs.length >= n
    },
    { timeoutMs: 60_000, what: '500 jobs succeeded' },
  )
  for (let i = 0; i < n; i += 50) {
    const j = (await cluster.get(`/jobs/${ids[i]}`)).body
    t.equal(j.state, 'succeeded')
    t.same(j.result, { i })
    t.equal(j.attempts, 1)
    t.ok(j.worker, 'worker recorded')
  }
})

t.test('?wait answers 200 with the finished job, 202 when it is not done in time', async (t) => {
  const done = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: 'hi' })
  t.equal(done.status, 200)
  t.equal(done.body.state, 'succeeded')
  t.equal(done.body.result, 'hi')
  const slow = await cluster.post('/jobs?wait=100', { function: 'sleep', payload: { ms: 2000 } })
  t.equal(slow.status, 202)
  t.notOk(['succeeded', 'failed', 'cancelled'].includes(slow.body.state))
})

t.test('a POST ?wait answer is the final record its finished notice carried, equal to the stored job', async (t) => {
  const nc = await natsConnect({ servers: nats.url })
  t.teardown(() => nc.close())
  const carried = new Map<string, Record<string, unknown>>()
  const sub = nc.subscribe(`bosun.${cluster.opts.cluster}.events.finished`, {
    callback: (_err, m) => {
      const env = m.json<{ body: { jobs: Array<{ id: string; job?: Record<string, unknown> }> } }>()
      for (const j of env.body.jobs) if (j.job) carried.set(j.id, j.job)
    },
  })
  t.teardown(() => sub.unsubscribe())
  await nc.flush()
  const waited = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: { carried: true } })
  t.equal(waited.status, 200)
  const plain = await cluster.post('/jobs', { function: 'echo', payload: { carried: false } })
  const plainJob = await cluster.waitJob(plain.body.id, 10_000)
  await waitFor(() => carried.has(waited.body.id), { what: 'the notice with the record', timeoutMs: 5000 })
  const { epoch: _epoch, ...record } = carried.get(waited.body.id)!
  t.same(record, waited.body, 'the answer is the record the notice carried')
  t.same(await cluster.waitJob(waited.body.id, 10_000), waited.body, 'and the job GET answers')
  t.notOk(carried.has(plainJob.id), 'a job nobody waits for is announced without its record')
})

t.test(
  "a POST ?wait job's final record is announced as it is written, its write acknowledged where the API hears it",
  async (t) => {
    const nc = await natsConnect({ servers: nats.url })
    t.teardown(() => nc.close())
    const announced = new Map<string, { ack: string; job: Record<string, unknown>; from: string }>()
    const acks = new Map<string, { stream?: string; seq?: number; error?: unknown }>()
    const prefix = `bosun.${cluster.opts.cluster}`
    const subs = [
      nc.subscribe(`${prefix}.events.finishing`, {
        callback: (_err, m) => {
          type Body = { jobs: Array<{ id: string; ack: string; job: Record<string, unknown> }> }
          const env = m.json<{ from: string; body: Body }>()
          for (const j of env.body.jobs) announced.set(j.id, { ack: j.ack, job: j.job, from: env.from })
        },
      }),
      nc.subscribe(`${prefix}.acks.>`, { callback: (_err, m) => void acks.set(m.subject, m.json()) }),
    ]
    t.teardown(() => subs.forEach((s) => s.unsubscribe()))
    await nc.flush()
    const waited = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: { announced: true } })
    t.equal(waited.status, 200)
    t.equal(waited.body.state, 'succeeded')
    const plain = await cluster.post('/jobs', { function: 'echo', payload: { announced: false } })
    await cluster.waitJob(plain.body.id, 10_000)
    await waitFor(() => announced.has(waited.body.id), { what: 'the announcement', timeoutMs: 5000 })
    const { ack, job, from } = announced.get(waited.body.id)!
    t.ok(ack.startsWith(`${prefix}.acks.`), 'acknowledged on a subject under the cluster')
    t.equal(from, `${prefix}.proc.${waited.body.worker}`, 'written and announced by the worker that ran it')
    await waitFor(() => acks.has(ack), { what: 'the acknowledgement', timeoutMs: 5000 })
    t.ok(typeof acks.get(ack)!.seq === 'number' && acks.get(ack)!.error === undefined, 'JetStream stored it there')
    const { epoch: _epoch, ...record } = job
    t.same(record, waited.body, 'the answer is the announced record')
    t.notOk(announced.has(plain.body.id), 'a job nobody waits for is not announced')
  },
)

t.test('GET /jobs/:id?wait holds the read until the job ends, else answers as it is when the wait ends', async (t) => {
  const sleeping = await cluster.post('/jobs', { function: 'sleep', payload: { ms: 1000 } })
  t.equal(sleeping.status, 202)
  const t0 = Date.now()
  const early = await cluster.get(`/jobs/${sleeping.body.id}?wait=100`)
  t.equal(early.status, 200)
  t.ok(['queued', 'running'].includes(early.body.state), `as it is after 100 ms: ${early.body.state}`)
  const ended = await cluster.get(`/jobs/${sleeping.body.id}?wait=20000`)
  const took = Date.now() - t0
  t.equal(ended.status, 200)
  t.equal(ended.body.state, 'succeeded', 'answered with the final job')
  t.ok(took >= 900 && took < 10_000, `answered ${took} ms after submit: when the 1 s job ended, not after the wait`)
  t.equal((await cluster.get(`/jobs/${sleeping.body.id}?wait=abc`)).status, 400)
})

t.test('bad input: 404 unknown function and job, 400 schema and JSON', async (t) => {
  const unknownFn = await cluster.post('/jobs', { function: 'nope' })
  t.equal(unknownFn.status, 404)
  t.equal(unknownFn.body.code, 'BOSUN_ERR_UNKNOWN_FUNCTION')
  t.equal((await cluster.get('/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV')).status, 404)
  const badSchema = await cluster.post('/jobs', { function: 'echo', maxAttempts: 'three' })
  t.equal(badSchema.status, 400)
  const res = await fetch(`${cluster.apiUrl}/jobs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"function":',
  })
  t.equal(res.status, 400)
  const batch = await cluster.post('/jobs/batch', { jobs: [{ function: 'echo' }, { function: 'BAD NAME' }] })
  t.equal(batch.status, 400)
  t.match(batch.body.message, /1/)
})

t.test('idempotency key: one job, one run', async (t) => {
  const file = runsFile()
  const key = uniqueName('idem')
  const answers = await Promise.all(
    Array.from({ length: 5 }, () =>
      cluster.post('/jobs', { function: 'count', payload: { file }, idempotencyKey: key }),
    ),
  )
  const ids = new Set(answers.map((a) => a.body.id))
  t.equal(ids.size, 1, 'same job for the same key')
  await cluster.waitJob([...ids][0])
  const again = await cluster.post('/jobs', { function: 'count', payload: { file }, idempotencyKey: key })
  t.equal(again.body.id, [...ids][0])
  t.equal(runs(file).length, 1, 'ran once')
})

t.test('cancel: a queued job never runs; a running job gets its signal aborted', async (t) => {
  const file = runsFile()
  // Every slot busy (2 job-running workers × 4), so the next job waits in the queue, ready to run.
  const state = await cluster.clusterState()
  const slots = state.workers.reduce((n, w) => n + w.capacity, 0)
  const blockers: string[] = []
  for (let i = 0; i < slots; i++) {
    blockers.push((await cluster.post('/jobs', { function: 'start', payload: { file, ms: 60_000 } })).body.id)
  }
  await waitFor(() => runs(file).length === slots, { timeoutMs: 30_000, what: 'every slot busy' })
  const queued = await cluster.post('/jobs', { function: 'count', payload: { file } })
  t.equal(queued.body.state, 'queued')
  const del = await cluster.del(`/jobs/${queued.body.id}`)
  t.equal(del.status, 200)
  t.equal((await cluster.waitJob(queued.body.id)).state, 'cancelled')
  // A job submitted after it: once it has run, the cancelled one would have run before it (FIFO).
  const after = await cluster.post('/jobs', { function: 'count', payload: { file } })
  // The blockers are running jobs: cancelling them aborts their signal and frees their slots.
  for (const id of blockers)
    t.equal((await cluster.del(`/jobs/${id}`)).status, 202, '202: the running job is being stopped')
  for (const id of blockers) t.equal((await cluster.waitJob(id, 10_000)).state, 'cancelled')
  t.equal((await cluster.waitJob(after.body.id, 30_000)).state, 'succeeded', 'the job queued after it ran')
  t.equal(runs(file).filter(([id]) => id === queued.body.id).length, 0, 'the cancelled job never ran')
  t.equal((await cluster.get(`/jobs/${queued.body.id}`)).body.state, 'cancelled', 'and stays cancelled')
})

t.test('timeoutMs aborts a job', async (t) => {
  const r = await cluster.post('/jobs?wait=10000', { function: 'sleep', payload: { ms: 20_000 }, timeoutMs: 200 })
  t.equal(r.status, 200)
  t.equal(r.body.state, 'failed')
  t.equal(r.body.error.code, 'BOSUN_ERR_FUNCTION_TIMEOUT')
})

t.test('a failing job is retried up to maxAttempts, then failed', async (t) => {
  const r = await cluster.post('/jobs', { function: 'fail', payload: { message: 'nope' }, maxAttempts: 3 })
  const final = await cluster.waitJob(r.body.id)
  t.equal(final.state, 'failed')
  t.equal(final.attempts, 3)
  t.equal(final.error.message, 'nope')
})

t.test('delayMs holds a job back', async (t) => {
  const r = await cluster.post('/jobs', { function: 'echo', payload: 1, delayMs: 800 })
  const final = await cluster.waitJob(r.body.id)
  t.ok(Date.parse(final.startedAt) - Date.parse(final.createdAt) >= 800, 'started after the delay')
})

t.test('POST /jobs/batch stores all in order', async (t) => {
  const jobs = Array.from({ length: 200 }, (_, i) => ({ function: 'echo', payload: i }))
  const r = await cluster.post('/jobs/batch', { jobs })
  t.equal(r.status, 202)
  t.equal(r.body.jobs.length, 200)
  const last = await cluster.waitJob(r.body.jobs[199].id)
  t.equal(last.result, 199)
})
