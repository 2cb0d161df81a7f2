/**
 * The messages of worker-written finals (jobs/dispatch-message.ts `final`, jobs/protocol.ts
 * `stored`): well-formed ones are taken; anything else is dropped — the job still runs, its result
 * still counts, and the boss writes the final itself.
 */
import t from 'tap'
import { parseAttemptResult, parseDispatchedJob } from '../../jobs/protocol.js'
import { newJob } from '../helpers/boss-fakes.js'

const basis = newJob({ state: 'running', attempts: 1, worker: 'w1', epoch: 2 })
const dispatched = { id: basis.id, function: 'echo', attempts: 1, payload: 1, timeoutMs: 1000 }
const final = { ...basis, state: 'succeeded', result: 3, payload: null }
const result = {
  jobId: basis.id,
  attempt: 1,
  epoch: 2,
  worker: 'w1',
  startedAt: new Date().toISOString(),
  finishedAt: new Date().toISOString(),
  outcome: { ok: true, result: 3 },
}

t.test('a dispatch keeps a running record of its own job as its final basis, and nothing else', async (t) => {
  t.same(parseDispatchedJob({ ...dispatched, final: basis })?.final, basis)
  const bad: unknown[] = [
    'x',
    null,
    { ...basis, id: newJob().id },
    { ...basis, state: 'queued' },
    { ...basis, createdAt: 'yesterday' },
    JSON.parse(JSON.stringify({ ...basis, payload: undefined })), // no payload at all
  ]
  for (const b of bad) {
    const job = parseDispatchedJob({ ...dispatched, final: b })
    t.ok(job, `${JSON.stringify(b)?.slice(0, 40)}: the job still runs`)
    t.notOk(job && 'final' in job, 'without a basis')
  }
})

t.test('a result keeps a stored success of its own job, and nothing else; never on a failure', async (t) => {
  t.same(parseAttemptResult({ ...result, stored: { seq: 9, job: final } })?.stored, { seq: 9, job: final })
  const bad: unknown[] = [
    { seq: 0, job: final },
    { seq: 'nine', job: final },
    { seq: 9, job: { ...final, id: newJob().id } },
    { seq: 9, job: { ...final, state: 'failed' } },
    { seq: 9, job: { ...final, attempts: -1 } },
    { seq: 9 },
  ]
  for (const stored of bad) {
    const r = parseAttemptResult({ ...result, stored })
    t.ok(r, `${JSON.stringify(stored).slice(0, 40)}: the result still counts`)
    t.notOk(r && 'stored' in r, 'as not stored')
  }
  const failed = { ...result, outcome: { ok: false, error: { message: 'x' } }, stored: { seq: 9, job: final } }
  t.notOk('stored' in parseAttemptResult(failed)!, 'a failure never says stored')
})
