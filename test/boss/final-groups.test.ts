/**
 * The boss writes first-run finals of one batch in groups (worker/boss/final-groups.ts), on the bench:
 * results of one batch that arrive together are one DONE write; finals that become ready while the
 * batch's group is being written go in its next group (never two writes of one batch in flight);
 * jobs someone waits for, jobs with a callback and later runs keep their own record; a group a
 * predecessor wrote for the batch stands for its jobs (the first final of a run stands), and this
 * term's group follows it on the chain.
 */
import t from 'tap'
import { jobIdOf, parseJobId } from '../../jobs/streams/index.js'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

t.test('results of one batch are one group; finals ready during its write are the next one', async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const { batch, jobs } = b.store.putBatch(6)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.length === 6, { what: 'all dispatched' })
  // The first group's write is held: results arriving meanwhile wait for the next group.
  let open!: () => void
  b.store.finalGates.set(jobs[0]!.id, new Promise<void>((r) => (open = r)))
  const first = term.onResults({ results: jobs.slice(0, 3).map((j) => w1.finish(j.id)) })
  await waitFor(() => b.store.groupCalls === 1, { what: 'the first group in flight' })
  const second = term.onResults({ results: jobs.slice(3).map((j) => w1.finish(j.id)) })
  await new Promise((r) => setTimeout(r, 50))
  t.equal(b.store.groupWrites.length, 0, 'nothing of the batch is written while its group is in flight')
  open()
  t.same(
    (await first).acked.sort(),
    jobs
      .slice(0, 3)
      .map((j) => j.id)
      .sort(),
    'the first results acknowledged',
  )
  t.same(
    (await second).acked.sort(),
    jobs
      .slice(3)
      .map((j) => j.id)
      .sort(),
    'then the others',
  )
  t.same(
    b.store.groupWrites.map((g) => g.ids.sort()),
    [
      jobs
        .slice(0, 3)
        .map((j) => j.id)
        .sort(),
      jobs
        .slice(3)
        .map((j) => j.id)
        .sort(),
    ],
    'two groups: the results of each delivery together',
  )
  t.equal(b.store.writes.filter((w) => w.kind === 'final').length, 6, 'each final once')
  await waitFor(() => !b.store.batches.has(batch), { what: 'the batch closed' })
  t.same(b.store.indexed.map((e) => e.id).sort(), jobs.map((j) => j.id).sort(), 'each listed once')
})

t.test('a batch of 40 finishing together is one group per part of 32 jobs', async (t) => {
  const w1 = new FakeWorker('w1', 64)
  const b = bench(w1)
  const { jobs } = b.store.putBatch(40)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.length === 40, { what: 'all dispatched' })
  const reply = await term.onResults({ results: jobs.map((j) => w1.finish(j.id)) })
  t.equal(reply.acked.length, 40, 'all acknowledged')
  t.same(b.store.groupWrites.map((g) => g.ids.length).sort(), [32, 8], 'two groups')
})

t.test('waited jobs, jobs with a callback and later runs keep a record of their own', async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const batch = parseJobId(newJob().id)!.batch
  const plain = newJob({ id: jobIdOf(batch, 0) })
  const withCallback = newJob({ id: jobIdOf(batch, 1), callbackUrl: 'http://cb/' })
  b.store.putSilently(plain)
  b.store.putSilently(withCallback)
  const waited = newJob()
  // A retried job's next run: submitted in a batch of its own, under its own id (jobs/streams/reopened.ts).
  const rerunId = newJob().id
  const rerun = newJob({ run: 1 })
  b.store.put(plain)
  b.store.put(waited, { waited: true })
  b.store.put(rerun, { id: rerunId, run: 1 })
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.length === 4, { what: 'all dispatched' })
  for (const id of [...w1.running.keys()]) w1.finish(id)
  const reply = await w1.deliver(term)
  t.equal(reply.acked.length, 4, 'all acknowledged')
  t.same(
    b.store.groupWrites.flatMap((g) => g.ids),
    [plain.id],
    'only the plain first run is grouped',
  )
  t.equal(b.store.writes.filter((w) => w.kind === 'final').length, 4, 'each final once')
})

t.test("a predecessor's group stands for its jobs; this term's follows it on the chain", async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const batch = parseJobId(newJob().id)!.batch
  const [a, c] = [0, 1].map((i) => newJob({ id: jobIdOf(batch, i) }))
  const now = new Date().toISOString()
  // Epoch 1 dispatched both and wrote a's final in a group, then died before any done mask; the
  // checkpoint passed it (a takeover that reads nothing of it), and w1 still runs both.
  for (const j of [a!, c!]) b.store.put({ ...j, state: 'running', attempts: 1, worker: 'w1', startedAt: now, epoch: 1 })
  const stood = { ...a!, state: 'succeeded' as const, attempts: 1, result: 'by epoch 1', finishedAt: now, epoch: 1 }
  const g = await b.store.writeFinalGroup({ v: 1, batch, part: 0, epoch: 1, finals: [stood], earlier: [] }, 0)
  t.ok(g.ok, "the predecessor's group")
  b.store.writeCheckpointRaw({ v: 1, epoch: 1, doneSeq: g.ok ? g.seq : 0 })
  for (const j of [a!, c!]) w1.running.set(j.id, { attempt: 1, epoch: 1, startedAt: now })
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  for (const j of [a!, c!]) w1.finish(j.id, { ok: true, result: 'by epoch 2' })
  const reply = await w1.deliver(term)
  t.same(reply.acked.sort(), [a!.id, c!.id].sort(), 'both results acknowledged')
  t.equal(b.store.current(a!.id)?.result, 'by epoch 1', "a's first final stands")
  t.equal(b.store.current(c!.id)?.result, 'by epoch 2', "c's final is this term's")
  t.same(
    b.store.groupWrites.map((w) => [w.epoch, w.ids]),
    [
      [1, [a!.id]],
      [2, [c!.id]],
    ],
    "this term's group holds only c, after the predecessor's",
  )
  t.same(w1.starts, [], 'nothing ran again')
})

t.test(
  "a predecessor's group after the checkpoint: its jobs load as final, nothing is written or run again",
  async (t) => {
    const w2 = new FakeWorker('w2', 8)
    const b = bench(w2)
    const batch = parseJobId(newJob().id)!.batch
    const [a, c] = [0, 1].map((i) => newJob({ id: jobIdOf(batch, i) }))
    const now = new Date().toISOString()
    // Epoch 1 recorded both running on w1, wrote their finals in one group, and died with w1 before
    // the done mask: no worker holds the results, and no checkpoint passed the group.
    for (const j of [a!, c!])
      b.store.put({ ...j, state: 'running', attempts: 1, worker: 'w1', startedAt: now, epoch: 1 })
    const finals = [a!, c!].map((j) => ({
      ...j,
      state: 'succeeded' as const,
      attempts: 1,
      result: 'first run',
      finishedAt: now,
      epoch: 1,
    }))
    t.ok((await b.store.writeFinalGroup({ v: 1, batch, part: 0, epoch: 1, finals, earlier: [] }, 0)).ok)
    const calls = b.store.groupCalls
    const term = b.term(2)
    t.teardown(() => term.stop())
    await term.start()
    await waitFor(() => !b.store.batches.has(batch), { what: 'the batch closed' })
    await new Promise((r) => setTimeout(r, 200)) // reconcile runs a few times meanwhile
    t.same(w2.starts, [], 'never dispatched again')
    t.equal(b.store.groupCalls, calls, 'the finals are not written again')
    t.same(
      [a!, c!].map((j) => b.store.current(j.id)?.result),
      ['first run', 'first run'],
      'the first finals stand',
    )
    await waitFor(() => b.store.indexed.length >= 2, { what: 'listed' })
    t.same(b.store.indexed.map((e) => e.id).sort(), [a!.id, c!.id].sort(), 'each listed once, by the takeover')
  },
)

t.test("a job run again unknowingly gets the final a predecessor's group holds, not a second one", async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const batch = parseJobId(newJob().id)!.batch
  const [a, c] = [0, 1].map((i) => newJob({ id: jobIdOf(batch, i) }))
  const now = new Date().toISOString()
  // The store says a is queued and c runs on w1, but a predecessor's group (which the checkpoint
  // passed, so no takeover reads it) holds a's final: this term runs a again without knowing.
  b.store.put(a!)
  b.store.put({ ...c!, state: 'running', attempts: 1, worker: 'w1', startedAt: now, epoch: 1 })
  const stood = { ...a!, state: 'succeeded' as const, attempts: 1, result: 'by epoch 1', finishedAt: now, epoch: 1 }
  const g = await b.store.writeFinalGroup({ v: 1, batch, part: 0, epoch: 1, finals: [stood], earlier: [] }, 0)
  b.store.writeCheckpointRaw({ v: 1, epoch: 1, doneSeq: g.ok ? g.seq : 0 })
  w1.running.set(c!.id, { attempt: 1, epoch: 1, startedAt: now })
  const term = b.term(2)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(a!.id), { what: 'a dispatched again' })
  // c's final first: its write meets the predecessor's group and learns a's final there.
  t.same((await term.onResults({ results: [w1.finish(c!.id)] })).acked, [c!.id])
  t.same((await term.onResults({ results: [w1.finish(a!.id, { ok: true, result: 'by epoch 2' })] })).acked, [a!.id])
  t.equal(b.store.current(a!.id)?.result, 'by epoch 1', "a's first final stands")
  t.same(
    b.store.groupWrites.map((w) => [w.epoch, w.ids]),
    [
      [1, [a!.id]],
      [2, [c!.id]],
    ],
    "no second final of a: this term's only group holds c",
  )
})

t.test(
  "a final queued while this term's group is refused is answered with the predecessor's, not written again",
  async (t) => {
    const w1 = new FakeWorker('w1', 8)
    const b = bench(w1)
    const batch = parseJobId(newJob().id)!.batch
    const [a, c] = [0, 1].map((i) => newJob({ id: jobIdOf(batch, i) }))
    const now = new Date().toISOString()
    // Both run on w1 since epoch 1 (test/faults/boss-pause.test.ts: the deposed boss wakes and
    // still writes a final of the results that waited for it while it was frozen).
    for (const j of [a!, c!]) {
      b.store.put({ ...j, state: 'running', attempts: 1, worker: 'w1', startedAt: now, epoch: 1 })
      w1.running.set(j.id, { attempt: 1, epoch: 1, startedAt: now })
    }
    const term = b.term(2)
    t.teardown(() => term.stop())
    await term.start()
    // This term's group of a is in flight ...
    let open!: () => void
    b.store.finalGates.set(a!.id, new Promise<void>((r) => (open = r)))
    const first = term.onResults({ results: [w1.finish(a!.id)] })
    await waitFor(() => b.store.groupCalls === 1, { what: "a's group in flight" })
    // ... when the deposed epoch 1 stores c's final on the chain, and c's result reaches this term too.
    const stood = { ...c!, state: 'succeeded' as const, attempts: 1, result: 'by epoch 1', finishedAt: now, epoch: 1 }
    t.ok((await b.store.writeFinalGroup({ v: 1, batch, part: 0, epoch: 1, finals: [stood], earlier: [] }, 0)).ok)
    const second = term.onResults({ results: [w1.finish(c!.id, { ok: true, result: 'by epoch 2' })] })
    await new Promise((r) => setTimeout(r, 20))
    open()
    t.same((await first).acked, [a!.id], 'a acknowledged')
    t.same((await second).acked, [c!.id], 'c acknowledged')
    t.equal(b.store.current(c!.id)?.result, 'by epoch 1', "c's first final stands")
    t.same(
      b.store.groupWrites.map((w) => [w.epoch, w.ids]),
      [
        [1, [c!.id]],
        [2, [a!.id]],
      ],
      'one final of c: the refused group learned it, and the queued one is answered with it',
    )
  },
)
