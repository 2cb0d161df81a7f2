/**
 * A worker's prefetch (worker/agent/start-gate.ts): jobs dispatched beyond its slots wait in order
 * and start as slots free, never more than WORKER_CONCURRENCY at once; a waiting job that is cancelled
 * never runs, one handed back at a drain goes back at once; a new boss's inventory finds the waiting
 * ones (so it adopts them instead of dispatching them again); GET /cluster's `running` counts only
 * the started ones.
 */
import t from 'tap'
import { MSG, type DispatchReply, type InventoryReply } from '../../jobs/protocol.js'
import { job, setup } from '../helpers/agent-fakes.js'
import { waitFor } from '../helpers/wait.js'
import { StartGate } from '../../worker/agent/start-gate.js'
import { errors } from '../../runner/index.js'
import { loadWorkerConfig } from '../../worker/config.js'

const answers = (r: DispatchReply) => r.answers.map((a) => (a.accepted ? 'ok' : a.reason))
const sentResults = (requests: { body: any }[]) => requests.flatMap((r) => r.body.results as any[])

t.test('jobs beyond the slots wait, start in order as slots free, at most the slots at once', async (t) => {
  const { transport, executor, agent } = setup(t, undefined, 2)
  agent.observeEpoch(1)
  const reply: DispatchReply = transport.call(MSG.dispatch, {
    epoch: 1,
    jobs: ['a', 'b', 'c', 'd', 'e'].map((id) => job(id)),
  })
  t.same(answers(reply), ['ok', 'ok', 'ok', 'ok', 'full'], 'two slots and two ahead; the fifth is refused')
  t.same(executor.calls, ['a', 'b'], 'only the slots run')
  t.equal(agent.status().running, 2, 'status counts the started jobs only')
  const inventory: InventoryReply = transport.call(MSG.inventory, { epoch: 2 })
  t.same(
    inventory.running.map((r) => r.jobId),
    ['a', 'b', 'c', 'd'],
    'a new boss finds the waiting jobs too (it adopts them, it does not dispatch them again)',
  )
  executor.runs.get('a')!.finish(true)
  await waitFor(() => executor.calls.length === 3, { what: 'c starting in the slot a left' })
  t.same(executor.calls, ['a', 'b', 'c'])
  executor.runs.get('c')!.finish(true)
  executor.runs.get('b')!.finish(true)
  await waitFor(() => executor.calls.length === 4, { what: 'd starting' })
  executor.runs.get('d')!.finish(true)
  await waitFor(() => sentResults(transport.requests).length === 4, { what: 'four results' })
  const results = sentResults(transport.requests)
  t.ok(
    results.every((r) => r.outcome.ok),
    'every job succeeded',
  )
  const c = results.find((r) => r.jobId === 'c')
  const a = results.find((r) => r.jobId === 'a')
  t.ok(Date.parse(c.startedAt) >= Date.parse(a.finishedAt), "c's startedAt is when it took a slot, not its dispatch")
})

t.test('a waiting job that is cancelled never runs and is reported cancelled', async (t) => {
  const { transport, executor, agent } = setup(t, undefined, 2)
  agent.observeEpoch(1)
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a'), job('b'), job('c')] })
  t.same(transport.call(MSG.abort, { epoch: 1, jobId: 'c' }), { aborted: true })
  await waitFor(() => sentResults(transport.requests).length === 1, { what: "c's result" })
  const [c] = sentResults(transport.requests)
  t.equal(c.jobId, 'c')
  t.equal(c.outcome.ok, false)
  t.equal(c.outcome.error.code, errors.FUNCTION_CANCELLED.code)
  t.notOk(c.outcome.handedBack, 'a cancel, not a hand-back')
  executor.runs.get('a')!.finish(true)
  executor.runs.get('b')!.finish(true)
  await waitFor(() => sentResults(transport.requests).length === 3, { what: "a's and b's results" })
  t.same(executor.calls, ['a', 'b'], 'c never ran')
})

t.test('a drain hands the waiting jobs back at once; the running ones get their grace', async (t) => {
  const { transport, executor, agent } = setup(t, undefined, 2)
  agent.observeEpoch(1)
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a'), job('b'), job('c')] })
  const drained = agent.drain(5000, 1000)
  await waitFor(() => sentResults(transport.requests).some((r) => r.jobId === 'c'), { what: 'c handed back' })
  const c = sentResults(transport.requests).find((r) => r.jobId === 'c')
  t.ok(c.outcome.handedBack, 'c went back to the boss without running')
  t.notOk(executor.runs.get('a')!.aborted, 'a still runs in its grace')
  executor.runs.get('a')!.finish(true)
  executor.runs.get('b')!.finish(true)
  await drained
  t.same(executor.calls, ['a', 'b'], 'c never ran on the draining worker')
})

t.test('without prefetch a worker takes only its slots (the default)', async (t) => {
  const { transport, agent } = setup(t)
  agent.observeEpoch(1)
  const reply: DispatchReply = transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a'), job('b'), job('c')] })
  t.same(answers(reply), ['ok', 'ok', 'full'])
})

t.test('the gate: a withdrawn ticket never takes a slot; release hands the slot to the oldest waiting', async (t) => {
  const gate = new StartGate(1)
  const order: string[] = []
  const ticket = (name: string) =>
    gate.take(
      () => order.push(`start ${name}`),
      () => order.push(`withdrawn ${name}`),
    )
  ticket('a')
  const b = ticket('b')
  ticket('c')
  t.same([gate.running, gate.waiting], [1, 2])
  t.equal(gate.withdraw(b), true)
  t.equal(gate.withdraw(b), false, 'twice: no-op')
  gate.release()
  t.same(order, ['start a', 'withdrawn b', 'start c'])
  t.same([gate.running, gate.waiting], [1, 0])
  gate.release()
  t.same([gate.running, gate.waiting], [0, 0])
})

t.test('WORKER_PREFETCH: parsed once, 4 × WORKER_CONCURRENCY by default and at most', async (t) => {
  t.equal(loadWorkerConfig({ WORKER_CONCURRENCY: '16' }).prefetch, 64)
  t.equal(loadWorkerConfig({ WORKER_CONCURRENCY: '16', WORKER_PREFETCH: '0' }).prefetch, 0, '0: off')
  t.equal(loadWorkerConfig({ WORKER_CONCURRENCY: '2', WORKER_PREFETCH: '8' }).prefetch, 8)
  t.throws(() => loadWorkerConfig({ WORKER_CONCURRENCY: '2', WORKER_PREFETCH: '9' }), {
    code: 'BOSUN_ERR_CONFIG',
    message: /WORKER_PREFETCH \(9\) must not exceed 4 × WORKER_CONCURRENCY \(8\)/,
  })
  t.throws(() => loadWorkerConfig({ WORKER_PREFETCH: '-1' }), { code: 'BOSUN_ERR_CONFIG' })
  t.throws(() => loadWorkerConfig({ WORKER_PREFETCH: 'lots' }), { code: 'BOSUN_ERR_CONFIG' })
})
