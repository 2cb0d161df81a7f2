/**
 * The leadership history rebuilt from boss events (runner/events/leadership.ts): a crashed boss
 * (no `boss.deposed`) ends at its last dispatch as the workers saw it, a SIGTERM'd one at its own
 * event; gaps run from the predecessor's last dispatch to the successor dispatching; newest first.
 */
import t from 'tap'
import { leadershipTerms } from '../../runner/events/leadership.js'
import { parseStoredEvent, type ClusterEvent } from '../../runner/events/model.js'

let seq = 0
const at = (ms: number) => new Date(Date.UTC(2026, 11, 2, 6, 0, 0) + ms).toISOString()
function ev(type: ClusterEvent['type'], ms: number, epoch: number, node: string, data: Record<string, unknown> = {}) {
  return {
    id: String(++seq),
    type,
    at: at(ms),
    epoch,
    source: { id: node, host: 'h', pid: 1, role: 'worker' },
    data,
  } satisfies ClusterEvent
}
const holder = (id: string) => ({ boss: { id, host: 'h', pid: 1 }, sessionTimeoutMs: 2000 })

t.test('first term, a kill -9 and a SIGTERM', async (t) => {
  const events = [
    ev('boss.elected', 0, 1, 'w1', holder('w1')),
    ev('boss.active', 300, 1, 'w1', { dispatchingAt: at(300), takeoverMs: 300, adopted: 0, requeued: 0 }),
    // w1 killed at ≈ 10 s; its session expires 2 s later; w2 is elected and dispatches at 12.5 s.
    ev('boss.elected', 12_000, 2, 'w2', holder('w2')),
    ev('boss.active', 12_500, 2, 'w2', {
      dispatchingAt: at(12_500),
      takeoverMs: 500,
      adopted: 3,
      requeued: 1,
      predecessorEpoch: 1,
      predecessorLastDispatchAt: at(10_000),
    }),
    ev('worker.left', 12_600, 2, 'w2', { worker: 'w1', reason: 'gone' }),
    ev('boss.deposed', 20_000, 2, 'w2', { reason: 'sigterm' }),
    ev('boss.elected', 20_050, 3, 'w3', holder('w3')),
    ev('boss.active', 20_120, 3, 'w3', {
      dispatchingAt: at(20_120),
      takeoverMs: 70,
      adopted: 5,
      requeued: 0,
      predecessorEpoch: 2,
      predecessorLastDispatchAt: at(19_990),
    }),
  ]
  const terms = leadershipTerms([...events].reverse())
  t.same(
    terms.map((x) => x.epoch),
    [3, 2, 1],
    'newest first, from events in any order',
  )
  const [third, second, first] = terms
  t.match(first, { epoch: 1, boss: { id: 'w1' }, start: at(0), after: 'first', ended: 'crashed', end: at(10_000) })
  t.equal(first!.gapBeforeMs, undefined)
  t.match(second, { epoch: 2, boss: { id: 'w2' }, after: 'crashed', ended: 'sigterm', end: at(20_000) })
  t.equal(second!.gapBeforeMs, 2500, 'the crashed boss’s last dispatch → dispatching again')
  t.equal(second!.leaderlessMs, 2000, 'last dispatch → election')
  t.same(second!.takeover, { takeoverMs: 500, adopted: 3, requeued: 1 })
  t.match(third, { epoch: 3, after: 'sigterm', dispatchingAt: at(20_120) })
  t.equal(third!.gapBeforeMs, 120, 'a deposed boss stopped at its deposition')
  t.equal(third!.end, undefined, 'the current term has no end')
  t.equal(third!.ended, undefined)
})

t.test('a crash: the gap starts at the last dispatch, but never more than a session timeout before', async (t) => {
  const base = [
    ev('boss.elected', 0, 1, 'w1', holder('w1')),
    ev('boss.active', 100, 1, 'w1', { dispatchingAt: at(100) }),
    ev('boss.elected', 60_000, 2, 'w2', holder('w2')),
  ]
  const active = (data: Record<string, unknown>) =>
    ev('boss.active', 60_400, 2, 'w2', { dispatchingAt: at(60_400), ...data })
  const idle = leadershipTerms([...base, active({ predecessorEpoch: 1, predecessorLastDispatchAt: at(200) })])
  t.equal(idle[0]!.gapBeforeMs, 2400, 'an idle boss: one session timeout before the election')
  t.equal(idle[1]!.end, at(200), 'it ended at its last dispatch')
  const none = leadershipTerms([...base, active({})])
  t.equal(none[0]!.gapBeforeMs, 2400, 'no dispatch seen: the same bound')
  const older = leadershipTerms([...base, active({ predecessorEpoch: 0, predecessorLastDispatchAt: at(59_900) })])
  t.equal(older[0]!.gapBeforeMs, 2400, "another term's last dispatch does not count")
})

t.test('a term whose elected event expired takes its holder from its other events', async (t) => {
  const terms = leadershipTerms([ev('boss.deposed', 5, 7, 'w9', { reason: 'suspended' })])
  t.match(terms, [{ epoch: 7, boss: { id: 'w9' }, ended: 'suspended', end: at(5) }])
  t.equal(terms[0]!.after, undefined, 'not known to be the first term')
})

t.test('garbage on the stream is not an event', async (t) => {
  const good = { type: 'boss.elected', at: at(0), source: { id: 'a', host: 'h', pid: 1, role: 'worker' }, data: {} }
  t.ok(parseStoredEvent(good, 4))
  t.equal(parseStoredEvent(good, 4)!.id, '4')
  for (const bad of [
    null,
    'x',
    { ...good, type: 'boss.exploded' },
    { ...good, at: 'yesterday' },
    { ...good, source: { id: 'a' } },
    { ...good, data: [] },
    { ...good, source: { ...good.source, pid: 1.5 } },
  ])
    t.equal(parseStoredEvent(bad, 1), undefined, JSON.stringify(bad))
  t.equal(parseStoredEvent({ ...good, epoch: -1 }, 1)!.epoch, undefined, 'a bad epoch is left out')
})
