/**
 * Closed batches' tombstones on the bench (worker/boss/tombstones.ts): a deposed boss's first state
 * write of a batch expects no record, so it must meet a record after its successor closed the batch —
 * the close of a batch open when the term began leaves one, a batch submitted later needs none, and
 * each tombstone is removed once its time is up, including those a predecessor left; the leftover of a
 * close that stopped half-way is replaced by one.
 */
import t from 'tap'
import { emptyState, parseJobId, tombstoneState } from '../../jobs/streams/index.js'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

const TTL_MS = 300

t.test("a predecessor's held first write is refused after this term closed the batch", async (t) => {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const adopted = newJob()
  b.store.put(adopted) // seen by the boss of epoch 1, which never wrote its state
  const term = b.term(2, { settings: { tombstoneTtlMs: TTL_MS, maskLingerMs: 10 } })
  t.teardown(() => term.stop())
  await term.start()
  const fresh = newJob()
  b.store.put(fresh) // submitted during this term: no older boss can have seen it
  await waitFor(() => w1.starts.includes(adopted.id) && w1.starts.includes(fresh.id), { what: 'both dispatched' })
  await term.onResults({ results: [w1.finish(adopted.id), w1.finish(fresh.id)] })
  const [a, f] = [adopted, fresh].map((j) => parseJobId(j.id)!.batch) as [string, string]
  await waitFor(() => !b.store.batches.has(a) && !b.store.batches.has(f), { what: 'both batches closed' })

  t.same(
    b.store.closes.map((c) => `${c.batch === a ? 'adopted' : 'fresh'}:${c.tombstone}`).sort(),
    ['adopted:true', 'fresh:false'],
    'the batch open at takeover left a tombstone; the later one none',
  )
  await t.rejects(
    b.store.writeState(emptyState(a, 1, 1), 0),
    { code: 'BOSUN_ERR_STALE_EPOCH' },
    "the old boss's write expecting no record meets the tombstone",
  )
  const tombstone = b.store.closedStates.get(a)!.revision
  await waitFor(() => b.store.removedTombstones.includes(tombstone), { what: 'the tombstone removed' })
  t.equal(b.store.closedStates.has(a), false, 'and gone from the store')
  t.equal(b.store.current(adopted.id)?.state, 'succeeded', 'the job reads as its final record')
})

t.test('a takeover removes the tombstones it finds when due, and closes a half-finished close', async (t) => {
  const b = bench(new FakeWorker('w1'))
  const [old, young, half] = [newJob(), newJob(), newJob()].map((j) => parseJobId(j.id)!.batch) as [
    string,
    string,
    string,
  ]
  const tomb = (batch: string, epoch: number) => tombstoneState(batch, 1, epoch)
  b.store.closedStates.set(old, { state: tomb(old, 1), revision: 101, at: Date.now() - 10 * TTL_MS })
  b.store.closedStates.set(young, { state: tomb(young, 1), revision: 102, at: Date.now() + 60_000 })
  // A close that removed the submission and died before the state record (epoch 1).
  b.store.closedStates.set(half, { state: emptyState(half, 1, 1), revision: 103, at: Date.now() })
  const term = b.term(2, { settings: { tombstoneTtlMs: TTL_MS } })
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => b.store.removedTombstones.includes(101), { what: 'the old tombstone removed' })
  await waitFor(() => b.store.closedStates.get(half)?.state.closed === true, { what: 'the leftover replaced' })
  t.equal(b.store.closedStates.get(half)!.state.epoch, 2, "by this term's tombstone")
  await t.rejects(
    b.store.writeState(emptyState(half, 1, 1), 103),
    { code: 'BOSUN_ERR_STALE_EPOCH' },
    'a write of the epoch that left it is refused',
  )
  const replaced = b.store.closedStates.get(half)!.revision
  await waitFor(() => b.store.removedTombstones.includes(replaced), { what: 'which is removed in its turn' })
  t.equal(b.store.closedStates.get(young)?.revision, 102, 'a tombstone not due yet stays')
})
