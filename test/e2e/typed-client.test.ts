/**
 * The typed HTTP client (`bosun/client`, client/http.ts) against a real cluster: ZooKeeper,
 * nats-server, workers and the API. Submit with and without `waitMs` and wait() for a typed result;
 * submitBatch; list() across pages; cancel a running job that ignores its signal; retry a failed job
 * (and a 409 for a succeeded one); wait() timing out; 404s and a 400 as their error classes; events()
 * replaying retained events and following a new one live.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import {
  Bosun,
  BosunConflictError,
  BosunNotFoundError,
  BosunTimeoutError,
  BosunValidationError,
  type ClusterEvent,
} from '../../client/http.js'

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('tclient'),
  workers: 2,
  concurrency: 4,
  functionsDir: e2eFunctionsDir(),
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()
const bosun = new Bosun({ url: cluster.apiUrl })

t.test('submit and wait: a typed result', async (t) => {
  const now = await bosun.submit<{ hello: string }, { hello: string }>('echo', { hello: 'typed' }, { waitMs: 10_000 })
  t.equal(now.state, 'succeeded', 'finished within ?wait')
  t.equal(now.result?.hello, 'typed')

  const queued = await bosun.submit<{ n: number }, { n: number }>('echo', { n: 42 }, { priority: 5, maxAttempts: 2 })
  t.match(queued, { function: 'echo', priority: 5, maxAttempts: 2, payload: { n: 42 } })
  const done = await bosun.wait<{ n: number }, { n: number }>(queued.id, { timeoutMs: 20_000 })
  t.equal(done.state, 'succeeded')
  t.equal(done.result?.n, 42)
  t.same(await bosun.get(queued.id), done, 'get answers the same job')
})

t.test('submitBatch, then list() follows cursors across pages', async (t) => {
  const jobs = await bosun.submitBatch(Array.from({ length: 7 }, (_, i) => ({ function: 'noop', payload: { i } })))
  t.equal(jobs.length, 7)
  for (const j of jobs) t.match(j, { id: String, state: 'queued' })
  for (const j of jobs) t.equal((await bosun.wait(j.id, { timeoutMs: 20_000 })).state, 'succeeded')

  const seen: string[] = []
  for await (const j of bosun.list({ function: 'noop', state: 'succeeded', limit: 3 })) seen.push(j.id)
  t.same([...seen].sort(), jobs.map((j) => j.id).sort(), 'every job once, in pages of 3')
  let pages = 0
  for await (const p of bosun.pages({ function: 'noop', limit: 3 })) {
    pages++
    t.ok(p.jobs.length <= 3)
  }
  t.equal(pages, 3, '7 jobs in pages of 3')
})

t.test('cancel a running job that ignores its signal', async (t) => {
  const job = await bosun.submit('stubborn', { ms: 60_000 })
  for (let i = 0; i < 200 && (await bosun.get(job.id))?.state !== 'running'; i++) await sleep(50)
  const cancelling = await bosun.cancel(job.id)
  t.ok(cancelling.state === 'running' || cancelling.state === 'cancelled', cancelling.state)
  const ended = await bosun.wait(job.id, { timeoutMs: 20_000 })
  t.equal(ended.state, 'cancelled')
  t.equal((await bosun.cancel(job.id)).state, 'cancelled', 'a finished job is answered unchanged')
})

t.test('retry a failed job; a succeeded one is a 409', async (t) => {
  const job = await bosun.submit('fail', { message: 'typed failure' })
  const failed = await bosun.wait(job.id, { timeoutMs: 20_000 })
  t.equal(failed.state, 'failed', 'wait resolves with a failed job')
  t.equal(failed.error?.message, 'typed failure')

  const again = await bosun.retry(job.id, { requestId: 'tc-1', maxAttempts: 1 })
  t.equal(again.id, job.id)
  t.equal(again.run, 1)
  const failedAgain = await bosun.wait(job.id, { timeoutMs: 20_000 })
  t.equal(failedAgain.state, 'failed')
  t.equal(failedAgain.run, 1)
  t.same(
    failedAgain.history?.map((e) => [e.run, e.outcome]),
    [
      [0, 'failed'],
      [1, 'failed'],
    ],
  )
  t.equal((await bosun.retry(job.id, { requestId: 'tc-1' })).run, 1, 'the same requestId answers the same')

  const ok = await bosun.submit('noop', null, { waitMs: 10_000 })
  const err = await bosun.retry(ok.id).catch((e: unknown) => e)
  t.ok(err instanceof BosunConflictError, String(err))
  t.match(err, { status: 409, code: 'BOSUN_ERR_JOB_NOT_RETRYABLE', details: { state: 'succeeded' } })

  const many = await bosun.retryMany({ state: 'failed', function: 'fail', limit: 10, requestId: 'tc-bulk' })
  t.same(many, { retried: 1, ids: [job.id] })
  t.equal((await bosun.wait(job.id, { timeoutMs: 20_000 })).run, 2)
})

t.test('wait() times out with BosunTimeoutError', async (t) => {
  const job = await bosun.submit('sleep', { ms: 3000 })
  const t0 = Date.now()
  const err = await bosun.wait(job.id, { timeoutMs: 400 }).catch((e: unknown) => e)
  t.ok(err instanceof BosunTimeoutError, String(err))
  t.ok(Date.now() - t0 < 3000)
  t.match((err as BosunTimeoutError).job, { id: job.id })
})

t.test('404s and a 400 as their classes', async (t) => {
  t.equal(await bosun.get('01JZZZZZZZZZZZZZZZZZZZZZZZ-0'), null)
  await t.rejects(bosun.cancel('01JZZZZZZZZZZZZZZZZZZZZZZZ-0'), {
    constructor: BosunNotFoundError,
    code: 'BOSUN_ERR_JOB_NOT_FOUND',
  })
  await t.rejects(bosun.submit('no-such-function', {}), {
    constructor: BosunNotFoundError,
    code: 'BOSUN_ERR_UNKNOWN_FUNCTION',
  })
  await t.rejects(bosun.submit('echo', {}, { priority: 5000 }), {
    constructor: BosunValidationError,
    code: 'BOSUN_ERR_VALIDATION',
  })
  await t.rejects(bosun.wait('01JZZZZZZZZZZZZZZZZZZZZZZZ-0', { timeoutMs: 1000 }), BosunNotFoundError)
})

t.test('events(): retained events after an id, and a new one live', async (t) => {
  // What the cluster's start recorded (boss.elected, boss.active, …), oldest first, read with GET.
  const page = (await (await fetch(`${cluster.apiUrl}/cluster/events?limit=100`)).json()) as { events: ClusterEvent[] }
  const retained = page.events.reverse()
  t.ok(retained.length >= 2, `${retained.length} events retained`)
  t.ok(retained.some((e) => e.type === 'boss.elected'))
  const [first, ...after] = retained as [ClusterEvent, ...ClusterEvent[]]
  const replayed: ClusterEvent[] = []
  for await (const e of bosun.events({ lastEventId: first.id, signal: AbortSignal.timeout(10_000) })) {
    if (replayed.push(e) === after.length) break
  }
  t.same(replayed, after, 'the stream replays the events after lastEventId, in order, as GET lists them')

  const live = bosun.events({
    types: ['worker.joined'],
    lastEventId: retained.at(-1)?.id ?? first.id,
    signal: AbortSignal.timeout(30_000),
  })
  const next = live.next()
  const w = cluster.addWorker()
  const joined = (await next).value as ClusterEvent
  t.equal(joined.type, 'worker.joined')
  t.equal(joined.data.worker, w.name)
  await live.return(undefined)
})

function sleep(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
