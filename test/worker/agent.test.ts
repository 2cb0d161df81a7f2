/**
 * The worker agent's rules, behind its narrow interfaces (a fake transport that captures handlers
 * and requests, a fake executor whose runs the test finishes by hand).
 */
import t from 'tap'
import { MSG, type DispatchReply, type InventoryReply } from '../../jobs/protocol.js'
import type { Job } from '../../jobs/model.js'
import { waitFor } from '../helpers/wait.js'
import { newJob } from '../helpers/boss-fakes.js'
import { job, setup, type FakeTransport } from '../helpers/agent-fakes.js'
import type { FinalWriter } from '../../worker/agent/own-final.js'

t.test('refuses a dispatch older than the newest epoch seen', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(5)
  const first: DispatchReply = transport.call(MSG.dispatch, { epoch: 5, jobs: [job('a')] })
  t.same(first.answers, [{ id: 'a', accepted: true }])
  const stale: DispatchReply = transport.call(MSG.dispatch, { epoch: 4, jobs: [job('b')] })
  t.same(stale.answers, [{ id: 'b', accepted: false, reason: 'stale-epoch' }])
  t.notOk(executor.runs.has('b'), 'the stale dispatch did not run')
})

t.test('a refused dispatch or inventory is told (dispatch.refused events)', async (t) => {
  const { transport, agent, refused } = setup(t)
  agent.observeEpoch(5)
  transport.call(MSG.dispatch, { epoch: 5, jobs: [job('a')] })
  t.same(refused, [], 'nothing refused yet')
  transport.call(MSG.dispatch, { epoch: 3, jobs: [job('b')] })
  t.throws(() => transport.call(MSG.inventory, { epoch: 4 }))
  transport.call(MSG.dispatch, { epoch: 99, jobs: [job('c')] })
  t.same(refused, [
    { what: 'dispatch', epoch: 3, newest: 5, reason: 'stale-epoch' },
    { what: 'inventory', epoch: 4, newest: 5, reason: 'stale-epoch' },
    { what: 'dispatch', epoch: 99, newest: 5, reason: 'unknown-epoch' },
  ])
})

t.test('an epoch learned from ZooKeeper also fences older bosses', async (t) => {
  const { transport, agent } = setup(t)
  agent.observeEpoch(9)
  const r: DispatchReply = transport.call(MSG.dispatch, { epoch: 8, jobs: [job('a')] })
  t.equal(r.answers[0]!.accepted, false)
  t.throws(() => transport.call(MSG.inventory, { epoch: 8 }), { code: 'BOSUN_ERR_STALE_EPOCH' })
})

t.test('the same job dispatched twice (new boss) runs once; capacity and functions are respected', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(1)
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a')] })
  const again: DispatchReply = transport.call(MSG.dispatch, {
    epoch: 2,
    jobs: [job('a'), job('b'), job('c'), job('d', 'nope')],
  })
  t.same(
    again.answers.map((a) => (a.accepted ? 'ok' : a.reason)),
    ['ok', 'ok', 'full', 'unknown-function'],
  )
  t.same(executor.calls, ['a', 'b'], 'run() called once for a, once for b')
})

t.test('a repeated dispatch under a new attempt number renumbers what the worker reports', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(1)
  transport.ackResults = false
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a'), job('b')] })
  agent.observeEpoch(2)
  transport.call(MSG.dispatch, { epoch: 2, jobs: [{ ...job('a'), attempts: 2 }] })
  const inv: InventoryReply = transport.call(MSG.inventory, { epoch: 2 })
  t.same(
    inv.running.find((r) => r.jobId === 'a'),
    { jobId: 'a', attempt: 2, epoch: 2, startedAt: inv.running.find((r) => r.jobId === 'a')!.startedAt },
  )
  executor.runs.get('b')!.finish(true)
  await waitFor(() => transport.requests.length > 0, { what: 'result sent' })
  transport.call(MSG.dispatch, { epoch: 2, jobs: [{ ...job('b'), attempts: 3 }] })
  t.same(
    (transport.call(MSG.inventory, { epoch: 2 }) as InventoryReply).held,
    [{ jobId: 'b', attempt: 3 }],
    'a held result is renumbered too',
  )
  t.same(executor.calls, ['a', 'b'], 'nothing ran twice')
})

t.test('inventory pages through held results', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(1)
  transport.ackResults = false
  const ids = Array.from({ length: 2 }, (_, i) => `j${i}`)
  transport.call(MSG.dispatch, { epoch: 1, jobs: ids.map((id) => job(id)) })
  for (const id of ids) executor.runs.get(id)!.finish(true)
  await waitFor(() => (transport.call(MSG.inventory, { epoch: 1 }) as InventoryReply).held.length === 2, {
    what: 'both held',
  })
  const second: InventoryReply = transport.call(MSG.inventory, { epoch: 1, after: 'j0' })
  t.same(
    second.held.map((h) => h.jobId),
    ['j1'],
    'after: skips what was already listed',
  )
})

t.test('inventory reports running jobs and unacknowledged results', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(1)
  transport.ackResults = false
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a'), job('b')] })
  executor.runs.get('a')!.finish(true)
  await waitFor(() => transport.requests.length > 0, { what: 'result sent' })
  const inv: InventoryReply = transport.call(MSG.inventory, { epoch: 2 })
  t.same(
    inv.running.map((r) => r.jobId),
    ['b'],
  )
  t.same(inv.held, [{ jobId: 'a', attempt: 1 }])
})

t.test('results are retried until the boss acknowledges them', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(1)
  transport.ackResults = false
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a')] })
  executor.runs.get('a')!.finish(true)
  await waitFor(() => transport.requests.length >= 2, { what: 'retried' })
  transport.ackResults = true
  agent.bossChanged()
  await waitFor(() => (transport.call(MSG.inventory, { epoch: 1 }) as InventoryReply).held.length === 0, {
    what: 'acked',
  })
  t.pass('result forgotten only after the ack')
})

t.test('cancel aborts a running job; drain hands back what does not finish', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(1)
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a'), job('b')] })
  t.same(transport.call(MSG.abort, { epoch: 1, jobId: 'a' }), { aborted: true })
  t.equal(executor.runs.get('a')!.aborted, 'cancel')
  await agent.drain(50, 1000)
  t.equal(executor.runs.get('b')!.aborted, 'shutdown')
  const sent = transport.requests.flatMap((r) => r.body.results)
  const b = sent.find((r: { jobId: string }) => r.jobId === 'b')
  t.ok(b?.outcome.handedBack, 'b was handed back, not failed')
  const refused: DispatchReply = transport.call(MSG.dispatch, { epoch: 1, jobs: [job('c')] })
  t.equal(refused.answers[0]!.accepted ? 'ok' : refused.answers[0]!.reason, 'draining')
})

t.test('an epoch far ahead of what ZooKeeper has shown is refused and does not raise the fence', async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(3)
  const forged: DispatchReply = transport.call(MSG.dispatch, { epoch: Number.MAX_SAFE_INTEGER, jobs: [job('x')] })
  t.same(forged.answers, [{ id: 'x', accepted: false, reason: 'unknown-epoch' }])
  t.equal(agent.newestEpoch, 3, 'the fence did not move')
  const real: DispatchReply = transport.call(MSG.dispatch, { epoch: 3, jobs: [job('a')] })
  t.equal(real.answers[0]!.accepted, true, 'the real boss is still obeyed')
  const next: DispatchReply = transport.call(MSG.dispatch, { epoch: 4, jobs: [job('b')] })
  t.equal(next.answers[0]!.accepted, true, 'one election ahead of our ZooKeeper view is accepted (watch lag)')
  t.ok(executor.runs.has('b'))
})

t.test('malformed messages are refused with a coded error, never crash', async (t) => {
  const { transport } = setup(t)
  for (const body of [null, 'x', 42, { epoch: -1, jobs: [] }, { epoch: 1 }, { epoch: 1, jobs: 'x' }]) {
    t.throws(() => transport.call(MSG.dispatch, body), { code: 'BOSUN_ERR_BAD_MESSAGE' })
  }
  const r: DispatchReply = transport.call(MSG.dispatch, { epoch: 1, jobs: [null, { id: 'x' }] })
  t.same(
    r.answers.map((a) => (a.accepted ? 'ok' : a.reason)),
    ['malformed', 'malformed'],
  )
})

t.test("a retried job's next run is refused while the last run's result is unacknowledged; then runs", async (t) => {
  const { transport, executor, agent } = setup(t)
  agent.observeEpoch(1)
  t.teardown(() => agent.close())
  transport.ackResults = false // the boss's acknowledgement of run 0's result is lost
  transport.call(MSG.dispatch, { epoch: 1, jobs: [job('a')] })
  executor.runs.get('a')!.finish(false)
  await waitFor(() => transport.requests.some((r) => r.type === MSG.results), { what: 'result sent' })
  const next: DispatchReply = transport.call(MSG.dispatch, { epoch: 1, jobs: [{ ...job('a'), run: 1 }] })
  t.same(next.answers, [{ id: 'a', accepted: false, reason: 'full' }], 'not taken for a repeat of run 0')
  t.same(executor.calls, ['a'])
  transport.ackResults = true
  await waitFor(() => (transport.call(MSG.inventory, { epoch: 1 }) as InventoryReply).held.length === 0, {
    what: 'run 0 acknowledged',
    timeoutMs: 10_000,
  })
  const later: DispatchReply = transport.call(MSG.dispatch, { epoch: 1, jobs: [{ ...job('a'), run: 1 }] })
  t.same(later.answers, [{ id: 'a', accepted: true }])
  executor.runs.get('a')!.finish(true)
  await waitFor(() => transport.requests.some((r) => r.type === MSG.results && r.body.results[0]?.run === 1), {
    what: 'run 1 reported as run 1',
  })
})

// ---- final records the boss lets the worker write (worker/agent/own-final.ts) ------------------

/** A dispatch of a waited job's first attempt, with the record its success is written from. */
function withFinalBasis(payload: unknown = { n: 1 }) {
  const basis = newJob({ state: 'running', attempts: 1, worker: 'w1', startedAt: new Date().toISOString(), epoch: 3 })
  const dispatched = { id: basis.id, function: 'echo', attempts: 1, payload, timeoutMs: 1000 }
  return { id: basis.id, dispatch: { ...dispatched, final: { ...basis, payload: null } } }
}

const sentResults = (transport: FakeTransport) =>
  transport.requests.filter((r) => r.type === MSG.results).flatMap((r) => r.body.results)

t.test(
  'a success the boss let it write: the worker stores the final (the boss’s rule), then reports it stored',
  async (t) => {
    const written: Job[] = []
    const { transport, executor, agent } = setup(t, async (job) => {
      written.push(job)
      return 42
    })
    agent.observeEpoch(3)
    const { id, dispatch } = withFinalBasis()
    transport.call(MSG.dispatch, { epoch: 3, jobs: [dispatch] })
    executor.runs.get(id)!.finish(true)
    await waitFor(() => sentResults(transport).length === 1, { what: 'the result sent' })
    t.equal(written.length, 1, 'one final written')
    t.match(written[0], { id, state: 'succeeded', result: id, worker: 'w1', epoch: 3, attempts: 1, payload: { n: 1 } })
    t.equal(written[0]!.history?.length, 1, 'with the attempt in its history')
    const [r] = sentResults(transport)
    t.same(r.stored, { seq: 42, job: { ...written[0], payload: null } }, 'the result names the stored record')
  },
)

t.test('while its final is being written the job is reported running, and renumbered by a new dispatch', async (t) => {
  let land!: (seq: number) => void
  const { transport, executor, agent } = setup(t, () => new Promise<number>((r) => (land = r)))
  agent.observeEpoch(3)
  const { id, dispatch } = withFinalBasis()
  transport.call(MSG.dispatch, { epoch: 3, jobs: [dispatch] })
  executor.runs.get(id)!.finish(true)
  await waitFor(() => land !== undefined, { what: 'the write started' })
  const during: InventoryReply = transport.call(MSG.inventory, { epoch: 3 })
  t.same(
    during.running.map((r) => r.jobId),
    [id],
    'running while its final is written',
  )
  agent.observeEpoch(4)
  const again: DispatchReply = transport.call(MSG.dispatch, { epoch: 4, jobs: [{ ...dispatch, attempts: 2 }] })
  t.same(again.answers, [{ id, accepted: true }], 'a new boss dispatching it again meanwhile is answered accepted')
  land(7)
  await waitFor(() => sentResults(transport).length === 1, { what: 'the result sent' })
  t.equal(agent.runningCount, 0)
  t.match(
    sentResults(transport)[0],
    { attempt: 2, epoch: 4, stored: { seq: 7 } },
    "reported under the new boss's number",
  )
})

t.test('a refused or failed write, a failure, a cancel, or no basis: the boss writes the final', async (t) => {
  const cases: Array<[string, FinalWriter, boolean]> = [
    ['another final stands', async () => undefined, true],
    ['the write failed', async () => Promise.reject(new Error('store down')), true],
    ['the attempt failed', async () => 9, false],
  ]
  for (const [what, write, ok] of cases) {
    const calls: Job[] = []
    const { transport, executor, agent } = setup(t, async (job) => {
      calls.push(job)
      return write(job)
    })
    agent.observeEpoch(3)
    const { id, dispatch } = withFinalBasis()
    transport.call(MSG.dispatch, { epoch: 3, jobs: [dispatch] })
    executor.runs.get(id)!.finish(ok)
    await waitFor(() => sentResults(transport).length === 1, { what: `${what}: the result sent` })
    t.notOk(sentResults(transport)[0].stored, `${what}: the result does not say stored`)
    t.equal(calls.length, ok ? 1 : 0, `${what}: ${ok ? 'one write tried' : 'nothing written'}`)
  }
  const calls: Job[] = []
  const cancelled = setup(t, async (job) => (calls.push(job), 1))
  cancelled.executor.ignoreAborts = true
  cancelled.agent.observeEpoch(3)
  const asked = withFinalBasis()
  cancelled.transport.call(MSG.dispatch, { epoch: 3, jobs: [asked.dispatch] })
  cancelled.transport.call(MSG.abort, { epoch: 3, jobId: asked.id })
  cancelled.executor.runs.get(asked.id)!.finish(true) // it ignored its signal and succeeded
  await waitFor(() => sentResults(cancelled.transport).length === 1, { what: 'the cancelled one reported' })
  t.equal(calls.length, 0, 'a cancel was asked while it ran: nothing written, the boss records it')
  const { transport, executor, agent } = setup(t, async (job) => (calls.push(job), 1))
  agent.observeEpoch(3)
  const { id, dispatch } = withFinalBasis()
  const { final: _f, ...plain } = dispatch
  transport.call(MSG.dispatch, { epoch: 3, jobs: [plain] })
  executor.runs.get(id)!.finish(true)
  await waitFor(() => sentResults(transport).length === 1, { what: 'the result sent' })
  t.equal(calls.length, 0, 'no basis in the dispatch: nothing written either')
})
