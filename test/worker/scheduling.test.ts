import t from 'tap'
import { ReadyQueue, type QueueEntry } from '../../worker/boss/ready-queue.js'
import { retryDelayMs } from '../../worker/boss/backoff.js'
import { Fleet } from '../../worker/boss/fleet.js'
import { afterAttempt, lostWorker, MAX_WORKER_LOSSES, notStarted, started } from '../../worker/boss/transitions.js'
import type { Job } from '../../jobs/model.js'
import { parseAttemptResult, type AttemptResult } from '../../jobs/protocol.js'
import type { ServiceEntry } from '../../runner/index.js'

const entry = (id: string, priority = 0, runAt = 0, fn = 'echo'): QueueEntry => ({ id, fn, priority, runAt, token: 1 })
const always = () => true

t.test('ready queue: priority first, then submission order', async (t) => {
  const q = new ReadyQueue()
  q.push(entry('03', 0))
  q.push(entry('01', 0))
  q.push(entry('02', 5))
  q.push(entry('04', -1))
  const order: string[] = []
  for (let e = q.popReady('echo', always); e; e = q.popReady('echo', always)) order.push(e.id)
  t.same(order, ['02', '01', '03', '04'])
})

t.test('ready queue: delayed jobs wait until due; stale entries are skipped', async (t) => {
  const q = new ReadyQueue()
  q.push(entry('a', 0, 1000), 0)
  q.push(entry('b', 0, 0), 0)
  t.equal(q.promoteDue(500), 1000, 'next due time reported')
  t.equal(q.popReady('echo', always)?.id, 'b')
  t.equal(q.popReady('echo', always), undefined, 'a not due yet')
  t.equal(q.promoteDue(1000), undefined)
  t.equal(
    q.popReady('echo', (e) => e.id !== 'a'),
    undefined,
    'stale entry dropped',
  )
})

t.test('ready queue: per function, no head-of-line blocking', async (t) => {
  const q = new ReadyQueue()
  q.push(entry('1', 9, 0, 'slow'))
  q.push(entry('2', 0, 0, 'echo'))
  t.same(q.functionsWithWork().sort(), ['echo', 'slow'])
  t.equal(q.popReady('echo', always)?.id, '2')
})

t.test('backoff grows exponentially with jitter and a cap', async (t) => {
  t.equal(retryDelayMs(1, { baseMs: 100, random: () => 0 }), 50)
  t.equal(retryDelayMs(1, { baseMs: 100, random: () => 1 }), 100)
  t.equal(retryDelayMs(3, { baseMs: 100, random: () => 1 }), 400)
  t.equal(retryDelayMs(30, { baseMs: 100, maxMs: 1000, random: () => 1 }), 1000)
})

const worker = (id: string, functions: string[], capacity: number): ServiceEntry => ({
  id,
  address: `a.${id}`,
  host: 'h',
  pid: 1,
  meta: { functions, capacity },
  registeredAt: '',
})

t.test('fleet picks the least-loaded worker with the function and a free slot', async (t) => {
  const f = new Fleet()
  f.setWorkers([worker('w1', ['echo'], 2), worker('w2', ['echo', 'sleep'], 2), worker('bad', ['echo'], 0)])
  t.equal(f.pick('sleep')?.id, 'w2')
  f.assign('w1', 'j1')
  t.equal(f.pick('echo')?.id, 'w2')
  f.assign('w2', 'j2')
  f.assign('w2', 'j3')
  t.equal(f.pick('echo')?.id, 'w1')
  f.assign('w1', 'j4')
  t.equal(f.pick('echo'), undefined, 'all full')
  t.equal(f.pick('nope'), undefined)
  f.release('w2', 'j2')
  t.equal(f.pick('echo')?.id, 'w2')
})

const job = (over: Partial<Job> = {}): Job => ({
  id: 'j',
  function: 'echo',
  state: 'queued',
  attempts: 0,
  maxAttempts: 3,
  payload: null,
  priority: 0,
  timeoutMs: 1000,
  createdAt: new Date(0).toISOString(),
  epoch: 0,
  ...over,
})
const result = (ok: boolean, over: Partial<AttemptResult> = {}): AttemptResult => ({
  jobId: 'j',
  attempt: 1,
  epoch: 1,
  worker: 'w',
  startedAt: 's',
  finishedAt: 'f',
  outcome: ok ? { ok: true, result: 42 } : { ok: false, error: { message: 'boom' } },
  ...over,
})

t.test('outcomes: success, retry with backoff, final failure, cancel', async (t) => {
  const now = new Date(10_000)
  const running = started(job(), 'w', now)
  t.equal(running.attempts, 1)
  t.equal(running.state, 'running')
  t.equal(afterAttempt(running, result(true), now).state, 'succeeded')
  const retry = afterAttempt(running, result(false), now, { random: () => 0 })
  t.equal(retry.state, 'queued')
  t.ok(Date.parse(retry.runAt!) > now.getTime(), 'retry is delayed')
  t.equal(afterAttempt({ ...running, attempts: 3 }, result(false), now).state, 'failed')
  t.equal(afterAttempt({ ...running, cancelRequested: true }, result(false), now).state, 'cancelled')
  t.equal(notStarted(running, now).attempts, 0, 'a refused dispatch does not count')
  t.equal(lostWorker(running, 1, now).state, 'queued', 'lost worker requeues')
  t.equal(lostWorker(running, MAX_WORKER_LOSSES, now).state, 'failed', 'too many losses fail the job')
})

t.test("progress: a final record keeps the last attempt's, a queued retry has none", async (t) => {
  const now = new Date(10_000)
  const running = started(job(), 'w', now)
  t.equal(afterAttempt(running, result(true, { progress: 80 }), now).progress, 80)
  t.same(afterAttempt({ ...running, attempts: 3 }, result(false, { progress: { step: 2 } }), now).progress, {
    step: 2,
  })
  t.equal(afterAttempt({ ...running, cancelRequested: true }, result(false, { progress: 5 }), now).progress, 5)
  t.notOk('progress' in afterAttempt(running, result(false, { progress: 30 }), now), 'a retry starts without')
  t.notOk('progress' in afterAttempt(running, result(true), now), 'none reported, none kept')
  const handedBack = result(false, { progress: 9 })
  if (!handedBack.outcome.ok) handedBack.outcome.handedBack = true
  t.notOk('progress' in afterAttempt(running, handedBack, now), 'a handed-back attempt keeps none')
  const at = now.toISOString()
  const wire = { ...result(true), jobId: '01ARZ3NDEKTSV4RRFFQ69G5FAV-000', startedAt: at, finishedAt: at }
  t.equal(parseAttemptResult({ ...wire, progress: 100 })?.progress, 100)
  for (const bad of [101, -1, 'x', [1], null, { big: 'x'.repeat(2000) }])
    t.notOk('progress' in parseAttemptResult({ ...wire, progress: bad })!, `${JSON.stringify(bad)} dropped`)
})
