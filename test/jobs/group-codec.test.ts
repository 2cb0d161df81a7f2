/**
 * The layout of a group of final records in DONE (jobs/streams/group-codec.ts): version 2 stores the
 * scalars every final shares once and each final's index and other fields; decoding gives back each
 * record as written, whatever its fields; malformed version-2 groups are garbage (null), not a throw.
 */
import t from 'tap'
import type { Job } from '../../jobs/model.js'
import { attemptEntry } from '../../jobs/attempts.js'
import { decodeGroup, type FinalGroup } from '../../jobs/streams/final-groups.js'
import { compactGroup } from '../../jobs/streams/group-codec.js'
import { jobIdOf } from '../../jobs/streams/layout.js'

const batch = '01M92Q2V2HP59PMFCTE0GSP4F7'
const bytes = (v: unknown) => Buffer.from(JSON.stringify(v))

/** A final as the boss writes it: its history the one entry of its attempt, dispatched in `epoch`. */
function finalOf(i: number, fields: Partial<Job> = {}, dispatchedIn = 4): Job {
  const job = plainFinal(i, fields)
  const entry = attemptEntry({
    run: job.run,
    attempt: job.attempts,
    worker: job.worker,
    epoch: dispatchedIn,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt!,
    outcome: job.state as 'succeeded',
    error: job.error,
  })
  return { ...job, history: [entry] }
}

function plainFinal(i: number, fields: Partial<Job> = {}): Job {
  return {
    id: jobIdOf(batch, i),
    function: 'noop',
    state: 'succeeded',
    attempts: 1,
    maxAttempts: 3,
    payload: { n: i },
    priority: 0,
    timeoutMs: 60_000,
    createdAt: '2026-12-05T09:00:00.000Z',
    startedAt: `2026-12-05T09:00:01.${String(i).padStart(3, '0')}Z`,
    finishedAt: `2026-12-05T09:00:02.${String(i).padStart(3, '0')}Z`,
    worker: 'w1',
    epoch: 4,
    result: null,
    ...fields,
  }
}

t.test('each final comes back as written, shared scalars stored once', async (t) => {
  const finals = [
    finalOf(0),
    finalOf(1, { worker: 'w2', result: { big: [1, 2] } }),
    finalOf(2, { state: 'failed', attempts: 3, error: { message: 'no', code: 'X' }, result: undefined }),
    finalOf(3, { payload: null, idempotencyKey: 'k3', progress: 50 }, 3),
    plainFinal(4),
    { ...finalOf(5), history: [...finalOf(5).history!, ...finalOf(5, { worker: 'w9' }).history!] },
    { ...finalOf(6), history: [{ ...finalOf(6).history![0]!, durationMs: 999 }] },
  ]
  const group: FinalGroup = { v: 1, batch, part: 0, epoch: 4, finals, earlier: [[7, 0, 3]] }
  const compact = compactGroup(group)
  t.same(
    compact.common,
    {
      function: 'noop',
      maxAttempts: 3,
      priority: 0,
      timeoutMs: 60_000,
      createdAt: '2026-12-05T09:00:00.000Z',
      epoch: 4,
    },
    'the scalars all seven share, and only those',
  )
  t.same(
    compact.finals.map((f) => f.i),
    [0, 1, 2, 3, 4, 5, 6],
    'each final by its index',
  )
  t.same(
    compact.finals.map((f) => [f.h, 'history' in f]),
    [
      [4, false],
      [4, false],
      [4, false],
      [3, false],
      [undefined, false],
      [undefined, true],
      [undefined, true],
    ],
    'a history that is the one entry its record implies is stored as its epoch; any other as it is',
  )
  t.notOk('id' in compact.finals[0]!, 'no id stored: the index and the batch make it')
  const back = decodeGroup(bytes(compact), batch, 0)
  t.same(back?.finals, JSON.parse(JSON.stringify(finals)), 'every record back, field for field')
  t.same(
    back?.finals.map((j) => JSON.stringify(j.history)),
    finals.map((j) => JSON.stringify(j.history)),
    'histories back byte for byte',
  )
  t.same(back?.earlier, [[7, 0, 3]], 'the earlier groups too')
  t.equal(back?.epoch, 4)
  t.same(decodeGroup(bytes(group), batch, 0)?.finals, back?.finals, 'version 1 reads the same')
})

t.test('a group of 32 first-run no-op finals is under a quarter of its version-1 size', async (t) => {
  const finals = Array.from({ length: 32 }, (_, i) => finalOf(i))
  const group: FinalGroup = { v: 1, batch, part: 0, epoch: 4, finals, earlier: [] }
  const v1 = bytes(group).length
  const compact = compactGroup(group)
  const v2 = bytes(compact).length
  t.equal(compact.common.h, 4, 'one dispatching epoch for all: stored once')
  t.same(decodeGroup(bytes(compact), batch, 0)?.finals, JSON.parse(JSON.stringify(finals)), 'each record back')
  t.ok(v2 * 4 < v1, `version 2 ${v2} bytes, version 1 ${v1}`)
})

t.test('a malformed version-2 group is garbage', async (t) => {
  const good = compactGroup({ v: 1, batch, part: 0, epoch: 4, finals: [finalOf(0), finalOf(1)], earlier: [] })
  const cases: Array<[string, unknown]> = [
    ['an index out of range', { ...good, finals: [{ ...good.finals[0], i: 1000 }] }],
    ['a negative index', { ...good, finals: [{ ...good.finals[0], i: -1 }] }],
    ['no index', { ...good, finals: [{ state: 'succeeded' }] }],
    ['an index of another part', { ...good, finals: [{ ...good.finals[0], i: 40 }] }],
    ['a final twice', { ...good, finals: [good.finals[0], good.finals[0]] }],
    ['common not an object', { ...good, common: [1] }],
    ['an object in common', { ...good, common: { ...good.common, payload: { n: 1 } } }],
    ['finals not a list', { ...good, finals: { i: 0 } }],
    ['no finals', { ...good, finals: [] }],
    ['another batch', { ...good, batch: '01M92Q2V2HP59PMFCTE0GSP4F8' }],
    ['a final missing its required fields', { ...good, common: {}, finals: [{ i: 0 }] }],
    ['a history epoch not a count', { ...good, finals: [{ ...good.finals[0], h: -1 }] }],
    ['a history epoch and a history', { ...good, finals: [{ ...good.finals[0], h: 1, history: [] }] }],
  ]
  for (const [what, v] of cases) t.equal(decodeGroup(bytes(v), batch, 0), null, what)
  // JSON.parse makes "__proto__" an own key; copied with Object.assign it would set a prototype.
  const text = JSON.stringify(good)
  for (const [what, forged] of [
    ['a __proto__ in common', text.replace('"common":{', '"common":{"__proto__":null,')],
    ['a __proto__ in a final', text.replace('"i":0', '"i":0,"__proto__":{"state":"failed"}')],
  ] as const) {
    t.not(forged, text, `${what} forged`)
    t.equal(decodeGroup(Buffer.from(forged), batch, 0), null, what)
  }
  t.ok(decodeGroup(bytes(good), batch, 0), 'the well-formed one decodes')
  const forged = { ...good, common: { ...good.common, id: jobIdOf(batch, 5) } }
  t.same(
    decodeGroup(bytes(forged), batch, 0)?.finals.map((j) => j.id),
    [jobIdOf(batch, 0), jobIdOf(batch, 1)],
    'an id in common does not override the index',
  )
})
