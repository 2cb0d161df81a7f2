/**
 * A dispatched job's running state is written to its batch's state record only if the job still
 * runs that attempt once BossSettings.runningWriteDelayMs has passed (worker/boss/commit.ts): a job
 * that finishes sooner never costs that write, one that runs longer is shown running.
 */
import t, { type Test } from 'tap'
import { bench, FakeWorker } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'
import type { BossSettings } from '../../worker/boss/settings.js'

/** Long enough that no stall of a loaded machine between a dispatch and the first check reaches it. */
const DELAY_MS = 1000

/** Seven jobs of one batch dispatched to one worker by a term with these settings. */
async function sevenDispatched(t: Test, settings: Partial<BossSettings>) {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const { batch, jobs } = b.store.putBatch(7)
  const term = b.term(1, { settings })
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.length === 7, { what: 'all seven dispatched' })
  // The batch was stored before the term began: its close leaves a tombstone (worker/boss/tombstones.ts), not counted.
  const tombstone = () => b.store.closedStates.get(batch)?.revision
  const stateWrites = () =>
    b.store.writes.filter((w) => w.kind === 'state' && w.key === batch && w.revision !== tombstone()).length
  const shown = (i: number) => b.store.batches.get(batch)?.state?.state.jobs[String(i)]
  return { w1, b, batch, jobs, term, stateWrites, shown }
}

t.test('jobs still running after the delay are written running; one write for the batch', async (t) => {
  const { w1, stateWrites, shown } = await sevenDispatched(t, { runningWriteDelayMs: DELAY_MS })
  t.equal(shown(0), undefined, 'not written at dispatch')
  await waitFor(() => shown(6)?.state === 'running', { what: 'the running state written', timeoutMs: 5 * DELAY_MS })
  const firstDispatch = Math.min(...w1.dispatchedAt.values())
  t.ok(Date.now() - firstDispatch >= DELAY_MS, 'written once the delay passed, not before')
  t.equal([0, 1, 2, 3, 4, 5, 6].filter((i) => shown(i)?.state === 'running').length, 7, 'every job shown running')
  t.ok(stateWrites() <= 2, `the batch's running states share its state writes (${stateWrites()})`)
})

t.test('jobs that finish within the delay never have their running state written', async (t) => {
  const { w1, b, batch, jobs, term, stateWrites } = await sevenDispatched(t, {
    runningWriteDelayMs: DELAY_MS,
    maskLingerMs: 10,
  })
  const acked = await term.onResults({ results: jobs.map((j) => w1.finish(j.id)) })
  t.equal(acked.acked.length, 7, 'seven results recorded')
  await waitFor(() => !b.store.batches.has(batch), { what: 'the batch closed' })
  await new Promise((r) => setTimeout(r, DELAY_MS + 200))
  t.equal(stateWrites(), 0, 'no state record was written for the batch: no running write came due')
})
