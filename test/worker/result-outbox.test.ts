/**
 * The worker's result outbox, through its narrow interface (a fake request function): a result goes
 * out while earlier ones are still being written by the boss, never in two requests at once, and is
 * forgotten only when acknowledged.
 */
import t from 'tap'
import { ResultOutbox } from '../../worker/agent/result-outbox.js'
import type { AttemptResult } from '../../jobs/protocol.js'
import { silentLogger } from '../../runner/logger.js'
import { waitFor } from '../helpers/wait.js'

const result = (jobId: string): AttemptResult => ({
  jobId,
  attempt: 1,
  epoch: 1,
  worker: 'w1',
  startedAt: new Date().toISOString(),
  finishedAt: new Date().toISOString(),
  outcome: { ok: true, result: jobId },
})

interface Call {
  ids: string[]
  answer(acked: string[], epoch?: number): void
  fail(err: Error): void
}

function outbox(newestEpoch?: () => number) {
  const calls: Call[] = []
  const box = new ResultOutbox({
    bossAddress: async () => 'boss',
    request: (_address, _type, body) =>
      new Promise((resolve, reject) => {
        const ids = (body as { results: AttemptResult[] }).results.map((r) => r.jobId)
        calls.push({ ids, answer: (acked, epoch) => resolve({ acked, ...(epoch ? { epoch } : {}) }), fail: reject })
      }),
    logger: silentLogger(),
    ...(newestEpoch ? { newestEpoch } : {}),
  })
  return { box, calls }
}

t.test('an acknowledgement from a boss older than the newest one seen is not believed: sent again', async (t) => {
  // A boss paused past its session (SIGSTOP) answers, on SIGCONT, the results sent to it meanwhile
  // before it learns it was deposed; its successor has already asked this worker for its inventory.
  let newest = 2
  const { box, calls } = outbox(() => newest)
  t.teardown(() => box.close())
  box.add(result('a'))
  await waitFor(() => calls.length === 1, { what: 'first request' })
  calls[0]!.answer(['a'], 1)
  await waitFor(() => calls.length === 2, { what: 'sent again', timeoutMs: 5000 })
  t.ok(box.has('a'), 'kept after the old boss acknowledged it')
  calls[1]!.answer(['a'], 2)
  t.equal(await box.drained(1000), true, 'forgotten once the current boss acknowledged it')
  newest = 3
  box.add(result('b'))
  await waitFor(() => calls.length === 3, { what: 'b sent' })
  calls[2]!.answer(['b'])
  t.equal(await box.drained(1000), true, 'a reply without an epoch (an older boss version) is believed')
})

t.test('a result is sent while an earlier request is still unanswered, never twice at once', async (t) => {
  const { box, calls } = outbox()
  t.teardown(() => box.close())
  box.add(result('a'))
  await waitFor(() => calls.length === 1, { what: 'first request' })
  box.add(result('b'))
  await waitFor(() => calls.length === 2, { what: 'second request, the first still unanswered' })
  t.same(calls[1]!.ids, ['b'], 'only what is not in flight')
  calls[1]!.answer(['b'])
  await waitFor(() => box.size === 1, { what: 'b forgotten' })
  t.ok(box.has('a'), 'a kept until its own answer')
  calls[0]!.answer(['a'])
  t.equal(await box.drained(1000), true)
  t.equal(calls.length, 2, 'nothing sent again')
})

t.test('a failed request sends its results again; an unacknowledged result is kept', async (t) => {
  const { box, calls } = outbox()
  t.teardown(() => box.close())
  box.add(result('a'))
  box.add(result('b'))
  await waitFor(() => calls.length === 1, { what: 'first request' })
  t.same(calls[0]!.ids, ['a', 'b'], 'results of one turn go together')
  calls[0]!.fail(new Error('timeout'))
  await waitFor(() => calls.length === 2, { what: 'retried' })
  t.same(calls[1]!.ids, ['a', 'b'])
  calls[1]!.answer(['a']) // b not acknowledged (e.g. its record not read yet by a new boss)
  await waitFor(() => calls.length === 3, { what: 'b sent again' })
  t.same(calls[2]!.ids, ['b'])
  calls[2]!.answer(['b'])
  t.equal(await box.drained(1000), true)
})

t.test('at most a few requests in flight: later results wait and go together', async (t) => {
  const { box, calls } = outbox()
  t.teardown(() => box.close())
  for (let i = 0; i < 4; i++) {
    box.add(result(`j${i}`))
    await waitFor(() => calls.length === i + 1, { what: `request ${i + 1}` })
  }
  box.add(result('x'))
  box.add(result('y'))
  await new Promise((r) => setTimeout(r, 50))
  t.equal(calls.length, 4, 'no fifth request while four are unanswered')
  calls[0]!.answer(['j0'])
  await waitFor(() => calls.length === 5, { what: 'the waiting results sent' })
  t.same(calls[4]!.ids, ['x', 'y'])
  for (const c of calls.slice(1)) c.answer(c.ids)
  t.equal(await box.drained(1000), true)
})
