/**
 * Completion callbacks without servers: the allow list and URL checks, the signature, the backoff
 * schedule, the deliverer's decisions (callback-plan.ts), the workers' and the API's callback env,
 * and the boss queueing a job's callback task before its final record (on the boss bench).
 */
import { createHmac } from 'node:crypto'
import t from 'tap'
import { callbackUrlProblem, deliveryId, parseAllowList, signature } from '../../jobs/callbacks/policy.js'
import { decodeStatus, decodeTask, encodeJson, type CallbackStatus } from '../../jobs/callbacks/store.js'
import { afterAttempt, attemptError, planTask, type TaskInput } from '../../worker/boss/callback-plan.js'
import { ackWaitMs } from '../../worker/boss/callback-runner.js'
import { loadWorkerConfig } from '../../worker/config.js'
import { loadApiConfig } from '../../api/config.js'
import type { Job } from '../../jobs/model.js'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

t.test('allow list: hosts, host:port, *, nothing', async (t) => {
  const a = parseAllowList(['hooks.example.com', 'API.example.com:8443', '127.0.0.1:9000', '[::1]'])
  const ok = (url: string, allow = a) => t.equal(callbackUrlProblem(url, allow), null, `${url} allowed`)
  const no = (url: string, why: RegExp, allow = a) => t.match(callbackUrlProblem(url, allow), why, `${url} refused`)
  ok('https://hooks.example.com/x?y=1')
  ok('http://hooks.example.com:1234/any-port')
  ok('https://api.example.com:8443/case-insensitive')
  ok('http://127.0.0.1:9000/')
  ok('http://[::1]:5/v6')
  no('https://api.example.com/x', /port 443 of host "api\.example\.com" is not in BOSUN_CALLBACK_ALLOW/)
  no('http://127.0.0.1:9001/', /port 9001/)
  no('https://evil.example.com/', /host "evil\.example\.com" is not in BOSUN_CALLBACK_ALLOW/)
  no('https://hooks.example.com.evil.net/', /not in BOSUN_CALLBACK_ALLOW/)
  no('ftp://hooks.example.com/', /http: or https:/)
  no('file:///etc/passwd', /http: or https:/)
  no('https://user:pw@hooks.example.com/', /credentials/)
  no('/relative', /absolute URL/)
  no(`https://hooks.example.com/${'x'.repeat(2100)}`, /longer than 2048/)
  const any = parseAllowList(['*'])
  ok('http://anything.example:1/', any)
  no('ftp://anything.example/', /http: or https:/, any)
  const none = parseAllowList([])
  no('https://hooks.example.com/', /callbacks are off \(BOSUN_CALLBACK_ALLOW is empty\)/, none)
  t.same(
    [...(parseAllowList(['h:1', 'h']).hosts.get('h') ?? ['any port'])],
    ['any port'],
    'a bare host wins over ports',
  )
})

t.test('signature: sha256=<hex HMAC of the exact bytes>; delivery ids', async (t) => {
  const body = encodeJson({ id: 'x', state: 'succeeded' })
  const expected = createHmac('sha256', 'k'.repeat(16)).update(body).digest('hex')
  t.equal(signature('k'.repeat(16), body), `sha256=${expected}`)
  t.not(signature('k'.repeat(16), encodeJson({ id: 'x', state: 'failed' })), `sha256=${expected}`)
  t.equal(deliveryId('01J-000', 0), '01J-000.0')
})

t.test('records: garbage decodes to null', async (t) => {
  t.same(decodeTask(encodeJson({ v: 1, jobId: 'a-001', run: 0 })), { v: 1, jobId: 'a-001', run: 0 })
  for (const bad of [
    { v: 2, jobId: 'a', run: 0 },
    { v: 1, jobId: 'a.b', run: 0 },
    { v: 1, jobId: 'a', run: -1 },
  ])
    t.equal(decodeTask(encodeJson(bad)), null, JSON.stringify(bad))
  t.equal(decodeTask(new Uint8Array([0xff, 0x00])), null, 'not UTF-8 JSON')
  const s: CallbackStatus = { v: 1, jobId: 'a', run: 0, state: 'pending', attempts: 2, lastStatus: 500, at: 'now' }
  t.same(decodeStatus(encodeJson(s), 'a'), s)
  t.equal(decodeStatus(encodeJson(s), 'b'), null, 'stored under another job')
  t.equal(decodeStatus(encodeJson({ ...s, state: 'lost' }), 'a'), null)
})

const settings = {
  allow: parseAllowList(['127.0.0.1']),
  maxAgeMs: 60_000,
  backoffMs: 1000,
  backoffMaxMs: 300_000,
}
const NOW = Date.parse('2026-12-03T10:00:00Z')
const finalJob = (over: Partial<Job> = {}): Job =>
  newJob({
    state: 'succeeded',
    finishedAt: new Date(NOW - 1000).toISOString(),
    callbackUrl: 'http://127.0.0.1:9/ok',
    ...over,
  })

t.test('backoff: doubling from the base with equal jitter, capped; failed past the max age', async (t) => {
  const job = finalJob({ finishedAt: new Date(NOW).toISOString() })
  const long = { ...settings, maxAgeMs: 24 * 3600 * 1000 }
  const at = (attempt: number, r: number) => afterAttempt({ status: 500 }, attempt, job, NOW, long, () => r)
  t.same(
    [1, 2, 3, 4].map((n) => at(n, 1)),
    [1000, 2000, 4000, 8000].map((delayMs) => ({ state: 'pending', delayMs })),
  )
  t.same(at(3, 0), { state: 'pending', delayMs: 2000 }, 'at least half the ceiling')
  t.same(at(20, 1), { state: 'pending', delayMs: 300_000 }, 'capped at 5 min')
  t.same(afterAttempt({ status: 204 }, 1, job, NOW, long), { state: 'delivered' })
  t.same(afterAttempt({ status: 302 }, 1, job, NOW, long, () => 0).state, 'pending', 'a redirect is not a delivery')
  t.same(afterAttempt({ error: 'ECONNREFUSED' }, 1, job, NOW, long, () => 0).state, 'pending')
  const old = finalJob({ finishedAt: new Date(NOW - 59_500).toISOString() })
  t.same(
    afterAttempt({ status: 500 }, 1, old, NOW, settings, () => 1),
    { state: 'failed' },
    'the next try is too late',
  )
  t.equal(attemptError({ status: 302 }), 'HTTP 302: redirects are not followed')
  t.equal(attemptError({ status: 503 }), 'HTTP 503')
  t.equal(attemptError({ status: 200 }), undefined)
})

t.test("the deliverer's decisions", async (t) => {
  const base = (over: Partial<TaskInput> = {}): TaskInput => {
    const final = finalJob()
    return {
      task: { v: 1, jobId: final.id, run: 0 },
      final,
      status: null,
      queuedAt: NOW - 500,
      deliveries: 1,
      now: NOW,
      settings,
      ...over,
    }
  }
  const post = planTask(base())
  t.equal(post.do, 'post')
  t.equal(post.do === 'post' && post.attempt, 1)
  const status = (over: Partial<CallbackStatus>): CallbackStatus => ({
    v: 1,
    jobId: 'x',
    run: 0,
    state: 'pending',
    attempts: 2,
    lastStatus: 500,
    at: '',
    ...over,
  })
  t.match(planTask(base({ status: status({}) })), { do: 'post', attempt: 3 }, 'attempts go on from the status')
  t.match(planTask(base({ status: status({ run: 1 }) })), { do: 'post', attempt: 1 }, "another run's status")
  t.match(planTask(base({ final: null })), { do: 'wait', delayMs: 200 }, 'no final record yet: wait')
  t.match(planTask(base({ final: null, deliveries: 10 })), { do: 'wait', delayMs: 5000 }, 'capped wait')
  t.match(
    planTask(base({ final: finalJob({ run: 0 }), task: { v: 1, jobId: 'x', run: 1 } })),
    { do: 'wait' },
    'older run',
  )
  t.match(planTask(base({ final: null, queuedAt: NOW - 61_000 })), { do: 'fail' }, 'no final record within the max age')
  t.match(planTask(base({ final: finalJob({ run: 2 }) })), { do: 'drop' }, 'a newer run supersedes the task')
  t.match(planTask(base({ status: status({ state: 'delivered' }) })), { do: 'drop', why: 'already delivered' })
  t.match(planTask(base({ status: status({ state: 'failed' }) })), { do: 'drop', why: 'already failed' })
  const { callbackUrl: _u, ...noUrl } = finalJob()
  t.match(planTask(base({ final: noUrl })), { do: 'drop' })
  t.match(
    planTask(base({ final: finalJob({ finishedAt: new Date(NOW - 61_000).toISOString() }), status: status({}) })),
    { do: 'fail', attempts: 2, lastStatus: 500 },
    'too old',
  )
  t.match(
    planTask(base({ final: finalJob({ callbackUrl: 'http://10.0.0.1/x' }) })),
    { do: 'fail', why: /not in BOSUN_CALLBACK_ALLOW/ },
    "the deliverer's own allow list is checked before a POST",
  )
  t.equal(ackWaitMs(10_000), 15_000)
  t.equal(ackWaitMs(100), 6000)
  t.equal(ackWaitMs(120_000), 30_000, 'working() keeps a long POST alive')
})

t.test('config: the callback env is validated once, at start', async (t) => {
  const w = loadWorkerConfig({})
  t.equal(w.callbacks.secret, undefined)
  t.equal(w.callbacks.timeoutMs, 10_000)
  t.equal(w.callbacks.maxAgeMs, 86_400_000)
  t.equal(w.callbacks.backoffMs, 1000)
  t.equal(w.callbacks.backoffMaxMs, 300_000)
  const secret = 's'.repeat(32)
  t.equal(
    loadWorkerConfig({ BOSUN_CALLBACK_ALLOW: 'a.example', BOSUN_CALLBACK_SECRET: secret }).callbacks.secret,
    secret,
  )
  const bad: Array<[Record<string, string>, RegExp]> = [
    [{ BOSUN_CALLBACK_ALLOW: 'a.example' }, /BOSUN_CALLBACK_ALLOW is set but BOSUN_CALLBACK_SECRET is not/],
    [{ BOSUN_CALLBACK_ALLOW: 'http://a.example', BOSUN_CALLBACK_SECRET: secret }, /BOSUN_CALLBACK_ALLOW item/],
    [{ BOSUN_CALLBACK_SECRET: 'short' }, /BOSUN_CALLBACK_SECRET/],
    [{ BOSUN_CALLBACK_TIMEOUT_MS: '10' }, /BOSUN_CALLBACK_TIMEOUT_MS=10 is below/],
    [{ BOSUN_CALLBACK_MAX_AGE_MS: 'a day' }, /BOSUN_CALLBACK_MAX_AGE_MS/],
    [{ BOSUN_CALLBACK_BACKOFF_MS: '5000', BOSUN_CALLBACK_BACKOFF_MAX_MS: '1000' }, /BACKOFF_MAX_MS is below/],
  ]
  for (const [env, why] of bad)
    t.throws(() => loadWorkerConfig(env), { code: 'BOSUN_ERR_CONFIG', message: why }, JSON.stringify(env))
  t.throws(() => loadApiConfig({ BOSUN_CALLBACK_ALLOW: 'a b' }), { code: 'BOSUN_ERR_CONFIG' }, 'the API checks it too')
  t.ok(loadApiConfig({ BOSUN_CALLBACK_ALLOW: 'a.example:8080,*' }).callbackAllow.any)
})

t.test("the boss queues a job's callback task before its final record; none for jobs without", async (t) => {
  const w = new FakeWorker('w1')
  const b = bench(w)
  const withCb = newJob({ callbackUrl: 'http://127.0.0.1:9/ok' })
  const without = newJob()
  b.store.put(withCb)
  b.store.put(without)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.starts.length === 2, { what: 'both dispatched' })
  w.finish(withCb.id)
  w.finish(without.id)
  await w.deliver(term)
  await waitFor(() => b.store.current(withCb.id)?.state === 'succeeded', { what: 'final' })
  t.same(b.store.callbackTasks, [{ jobId: withCb.id, run: 0, finalBefore: false }], 'one task, before the final')
  t.equal(b.store.current(withCb.id)!.callbackUrl, withCb.callbackUrl, 'the final record keeps the callbackUrl')
})
