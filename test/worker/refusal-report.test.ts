/**
 * RefusalReport (worker/refusal-report.ts): a deposed boss's burst of refused dispatches becomes one
 * `dispatch.refused` event per kind, epoch and reason per window, with the count; nothing after close.
 */
import t from 'tap'
import { RefusalReport } from '../../worker/refusal-report.js'
import type { EventData } from '../../runner/events/model.js'
import { waitFor } from '../helpers/wait.js'

type Emitted = { data: EventData['dispatch.refused']; epoch: number }

t.test('refusals are counted per kind, epoch and reason, and told once per window', async (t) => {
  const out: Emitted[] = []
  const report = new RefusalReport((data, epoch) => out.push({ data, epoch }), 50)
  t.teardown(() => report.close())
  for (let i = 0; i < 300; i++) report.add({ what: 'dispatch', epoch: 3, newest: 4, reason: 'stale-epoch' })
  report.add({ what: 'inventory', epoch: 3, newest: 5, reason: 'stale-epoch' })
  report.add({ what: 'dispatch', epoch: 9, newest: 4, reason: 'unknown-epoch' })
  report.add({ what: 'dispatch', epoch: 3, newest: 5, reason: 'stale-epoch' })
  t.same(out, [], 'nothing before the window ends')
  await waitFor(() => out.length > 0)
  t.same(out, [
    { data: { what: 'dispatch', epoch: 3, newest: 5, reason: 'stale-epoch', count: 301 }, epoch: 3 },
    { data: { what: 'inventory', epoch: 3, newest: 5, reason: 'stale-epoch', count: 1 }, epoch: 3 },
    { data: { what: 'dispatch', epoch: 9, newest: 4, reason: 'unknown-epoch', count: 1 }, epoch: 9 },
  ])
  report.add({ what: 'dispatch', epoch: 3, newest: 5, reason: 'stale-epoch' })
  await waitFor(() => out.length === 4)
  t.equal(out[3]!.data.count, 1, 'a new window counts from 1')
})

t.test('close tells what is pending, then takes no more; twice is fine', async (t) => {
  const out: Emitted[] = []
  const report = new RefusalReport((data, epoch) => out.push({ data, epoch }), 60_000)
  report.add({ what: 'dispatch', epoch: 2, newest: 3, reason: 'stale-epoch' })
  report.close()
  t.equal(out.length, 1, 'told at close, not a minute later')
  report.add({ what: 'dispatch', epoch: 2, newest: 3, reason: 'stale-epoch' })
  report.close()
  t.equal(out.length, 1, 'nothing after close')
})
