/**
 * Done masks are written behind the results: a batch's finals that arrive in several waves within
 * the mask linger (BossSettings.maskLingerMs) share one state-record write, the results are
 * acknowledged before it, and DONE's checkpoint passes their final records only once that write is
 * durable.
 */
import t from 'tap'
import { doneSet, jobIdOf, parseJobId } from '../../jobs/streams/index.js'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

t.test('finals of one batch in three waves: acknowledged at once, one mask write, then the checkpoint', async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const { batch, jobs } = b.store.putBatch(7)
  const term = b.term(1, { settings: { checkpointIntervalMs: 10, maskLingerMs: 1000 } })
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.length === 7, { what: 'all seven dispatched' })
  await waitFor(() => b.store.batches.get(batch)?.state?.state.jobs['0']?.state === 'running', {
    what: 'their running state written',
  })
  const stateWrites = () => b.store.writes.filter((w) => w.kind === 'state' && w.key === batch).length
  const before = stateWrites()
  // Six of seven finish in three waves; the seventh keeps the batch open.
  for (const wave of [jobs.slice(0, 2), jobs.slice(2, 4), jobs.slice(4, 6)]) {
    const acked = await term.onResults({ results: wave.map((j) => w1.finish(j.id)) })
    t.same([...acked.acked].sort(), wave.map((j) => j.id).sort(), 'acknowledged once the final records are stored')
  }
  t.equal(stateWrites(), before, 'no mask written yet: acknowledged before it')
  const lastFinal = Math.max(...jobs.slice(0, 6).map((j) => b.store.finalSeq(j.id)!))
  t.ok((b.store.checkpoint?.doneSeq ?? 0) < lastFinal, 'the checkpoint is held below the unmasked records')
  await waitFor(() => stateWrites() > before, { what: 'the mask written' })
  await new Promise((r) => setTimeout(r, 300))
  t.equal(stateWrites(), before + 1, 'one mask write for the three waves')
  const done = b.store.batches.get(batch)!.state!.state.done
  t.ok(done, 'the mask is in the record')
  await waitFor(() => (b.store.checkpoint?.doneSeq ?? 0) >= lastFinal, { what: 'the checkpoint passes them' })
})

t.test(
  "a result's final state reaches the batch's state record only through its final record " +
    '(a state write meanwhile keeps it running)',
  async (t) => {
    const w1 = new FakeWorker('w1', 8)
    const b = bench(w1)
    const batch = parseJobId(newJob().id)!.batch
    // c has a callback: its final is written on its own, not in a group behind a's held one.
    const [a, c] = [0, 1].map((i) =>
      newJob({ id: jobIdOf(batch, i), ...(i === 1 ? { callbackUrl: 'http://cb/' } : {}) }),
    )
    b.store.putSilently(a!)
    b.store.put(c!)
    const term = b.term(1, { settings: { maskLingerMs: 10 } })
    t.teardown(() => term.stop())
    await term.start()
    await waitFor(() => w1.starts.length === 2, { what: 'both dispatched' })
    let open!: () => void
    b.store.finalGates.set(a!.id, new Promise<void>((r) => (open = r)))
    const aAcked = term.onResults({ results: [w1.finish(a!.id)] })
    // The other job's final and its done mask: a write of the batch's state record while a's is held.
    await term.onResults({ results: [w1.finish(c!.id)] })
    await waitFor(
      () =>
        b.store.batches.get(batch)?.state?.state.done !== undefined &&
        doneSet(b.store.batches.get(batch)!.state!.state).has(1),
      {
        what: 'the mask of the other job written',
      },
    )
    const live = b.store.batches.get(batch)!.state!.state.jobs['0']
    t.equal(live?.state, 'running', 'the state record still shows the job running (its result is not durable yet)')
    t.equal(b.store.current(a!.id)?.state, 'running', 'a reader sees it running, not succeeded without a result')
    open()
    t.same((await aAcked).acked, [a!.id], 'acknowledged once its final record is stored')
    t.equal(b.store.current(a!.id)?.result, a!.id, 'and the stored job carries the result')
  },
)
