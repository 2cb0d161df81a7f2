/**
 * Final records written by the workers that ran the jobs (worker/boss/worker-finals.ts), on the
 * bench: which dispatches let a worker write, a result whose final is stored already is recorded
 * without a second write, and a final no boss heard of — its worker lost, or the boss replaced,
 * with DONE's checkpoint past it — is adopted, never run again.
 */
import t, { type Test } from 'tap'
import type { Job } from '../../jobs/model.js'
import { bench, FakeWorker, newJob, type Bench } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

/** A waited job dispatched to w1 by a term of epoch 1 (w1 the only worker so far). */
async function waitedRunning(t: Test, settings: { runningWriteDelayMs?: number } = {}, over: Partial<Job> = {}) {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob(over)
  b.store.put(job, { waited: true })
  const term = b.term(1, { settings })
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(job.id), { what: 'running on w1' })
  return { w1, b, job, term }
}

/** w1 is gone from ZooKeeper and NATS; w2 takes its place. */
function replaceWorker(b: Bench, w1: FakeWorker): FakeWorker {
  w1.mode = 'gone'
  b.registry.leave(w1.id)
  const w2 = new FakeWorker('w2')
  b.transport.add(w2)
  b.registry.join(w2)
  return w2
}

const indexEntriesOf = (b: Bench, id: string) => b.store.indexed.filter((e) => e.id === id).length

t.test('only the first attempt of a waited job, without a callback, lets its worker write the final', async (t) => {
  const w = new FakeWorker('w1')
  const b = bench(w)
  const waited = newJob({ payload: { big: 'x'.repeat(100) } })
  const plain = newJob()
  const withCallback = newJob({ callbackUrl: 'https://example.test/hook' })
  b.store.put(waited, { waited: true })
  b.store.put(plain)
  b.store.put(withCallback, { waited: true })
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w.received.length === 3, { what: 'three dispatched' })
  const sent = (id: string) => w.received.find((j) => j.id === id)!
  const basis = sent(waited.id).final as Job
  t.ok(basis, 'the waited job carries the record its success is written from')
  t.match(basis, { id: waited.id, state: 'running', attempts: 1, worker: 'w1', payload: null })
  t.same(sent(waited.id).payload, waited.payload, 'the payload travels once, in the dispatch')
  t.notOk(sent(plain.id).final, 'a job nobody waits for: the boss writes its final')
  t.notOk(sent(withCallback.id).final, 'a job with a callback: the boss queues the callback before the final')
})

t.test('a retried attempt does not let its worker write the final (the history is the boss’s)', async (t) => {
  const { w1, b, job, term } = await waitedRunning(t, {}, { maxAttempts: 3 })
  w1.finish(job.id, { ok: false, error: { message: 'boom' } })
  await w1.deliver(term)
  const retried = b.store.current(job.id)!
  t.equal(retried.state, 'queued')
  // Run the retry now rather than after its backoff.
  b.store.put({ ...retried, runAt: new Date().toISOString() }, { waited: true })
  const term2 = b.term(2)
  t.teardown(() => term2.stop())
  term.stop()
  await term2.start()
  await waitFor(() => w1.received.filter((j) => j.id === job.id).length === 2, { what: 'the second attempt' })
  t.notOk(w1.received.at(-1)!.final, 'no final basis for a second attempt')
})

t.test('a result whose final its worker stored is recorded without a second write', async (t) => {
  const { w1, b, job, term } = await waitedRunning(t)
  const result = await w1.finishWritingFinal(job.id, b.store)
  t.ok(result.stored, 'the worker stored the final itself')
  const finalsBefore = b.store.writes.filter((w) => w.kind === 'final').length
  const reply = await w1.deliver(term)
  t.same(reply.acked, [job.id], 'the result is acknowledged')
  await waitFor(() => b.finished.some((j) => j.id === job.id), { what: 'finished notice' })
  await waitFor(() => indexEntriesOf(b, job.id) === 1, { what: 'listed' })
  t.equal(b.store.writes.filter((w) => w.kind === 'final').length, finalsBefore, 'the boss wrote no final')
  const stored = b.store.current(job.id)!
  t.match(stored, { state: 'succeeded', result: job.id, worker: 'w1', epoch: 1, attempts: 1 })
  t.same(stored.payload, job.payload, 'the stored record carries the payload')
  t.equal(stored.history?.length, 1, 'with the attempt in its history, as the boss would write it')
  t.same(
    b.finished.find((j) => j.id === job.id),
    stored,
    'the notice carries the record as stored',
  )
  await waitFor(() => term.status().running === 0 && term.status().queued === 0, { what: 'the job left the table' })
})

t.test('a worker lost after writing its final: the boss adopts the final and does not run the job again', async (t) => {
  const { w1, b, job } = await waitedRunning(t)
  const written = await w1.finishWritingFinal(job.id, b.store) // its result never reaches the boss
  const w2 = replaceWorker(b, w1)
  await waitFor(() => indexEntriesOf(b, job.id) === 1, { what: 'the final adopted and listed', timeoutMs: 5000 })
  await waitFor(() => b.finished.some((j) => j.id === job.id), { what: 'finished notice' })
  t.notOk(w2.starts.includes(job.id), 'not run again on w2')
  t.same(b.store.current(job.id), { ...written.stored!.job, payload: job.payload }, "the worker's final stands")
})

for (const how of ['running', 'queued'] as const) {
  t.test(
    `a final its worker wrote unheard, below the checkpoint, is adopted by the next boss (record ${how})`,
    async (t) => {
      // `queued`: the dispatch's running state was never written (it is written only after a delay).
      const { w1, b, job, term } = await waitedRunning(t, how === 'queued' ? { runningWriteDelayMs: 60_000 } : {})
      await w1.finishWritingFinal(job.id, b.store)
      term.stop()
      const seq = b.store.finalSeq(job.id)!
      b.store.checkpoint = { v: 1, epoch: 1, doneSeq: seq + 5 } // DONE's tail read does not see it
      t.equal(b.store.current(job.id)?.state, 'succeeded')
      t.not(b.store.batches.size, 0, 'its batch is still open: no done mask')
      const w2 = replaceWorker(b, w1)
      const term2 = b.term(2)
      t.teardown(() => term2.stop())
      await term2.start()
      await waitFor(() => indexEntriesOf(b, job.id) === 1, { what: 'the final adopted and listed', timeoutMs: 5000 })
      await waitFor(() => term2.status().queued === 0 && term2.status().running === 0, { what: 'the job settled' })
      t.notOk(w2.starts.includes(job.id), 'not run again after the boss changed')
      t.equal(w1.starts.filter((id) => id === job.id).length, 1, 'it ran once')
    },
  )
}

t.test('an adopted final that a dead boss had listed already is not listed twice', async (t) => {
  const { w1, b, job, term } = await waitedRunning(t)
  const r = await w1.finishWritingFinal(job.id, b.store)
  await b.store.index([{ id: job.id, state: 'succeeded', fn: r.stored!.job.function }]) // listed, then died
  term.stop()
  b.store.checkpoint = { v: 1, epoch: 1, doneSeq: b.store.finalSeq(job.id)! + 1 }
  const w2 = replaceWorker(b, w1)
  const term2 = b.term(2)
  t.teardown(() => term2.stop())
  await term2.start()
  await waitFor(() => term2.status().queued === 0 && term2.status().running === 0, { what: 'the job settled' })
  await waitFor(() => b.store.batches.size === 0, { what: 'its batch closed' })
  t.equal(indexEntriesOf(b, job.id), 1, 'one listing entry')
  t.notOk(w2.starts.includes(job.id))
})

t.test('a job with no final is dispatched after the read, and the read is retried when it fails', async (t) => {
  const { w1, b, job, term } = await waitedRunning(t)
  term.stop()
  const w2 = replaceWorker(b, w1)
  b.store.failReadsDone = 2
  const term2 = b.term(2)
  t.teardown(() => term2.stop())
  await term2.start()
  await waitFor(() => w2.starts.includes(job.id), { what: 'run on w2 after the reads', timeoutMs: 5000 })
  t.equal(b.store.failReadsDone, 0, 'both failed reads were retried')
  const reads = b.store.doneReads.filter((id) => id === job.id).length
  t.ok(reads >= 3, `read until a read succeeded (${reads} reads), then dispatched`)
})

t.test('an obsolete result whose worker stored a final makes the boss read it before any re-dispatch', async (t) => {
  const { w1, b, job, term } = await waitedRunning(t)
  const r = await w1.finishWritingFinal(job.id, b.store)
  // The boss believes another attempt runs (as after a renumbering it never heard of): the result is obsolete.
  w1.held.set(job.id, { ...r, attempt: 5 })
  const reply = await w1.deliver(term)
  t.same(reply.acked, [job.id], 'acknowledged as obsolete')
  // w1 neither runs nor holds it now: reconcile finds the dispatch lost and puts it back; the final is adopted.
  await waitFor(() => indexEntriesOf(b, job.id) === 1, { what: 'the final adopted and listed', timeoutMs: 5000 })
  t.equal(w1.starts.filter((id) => id === job.id).length, 1, 'not run again')
})

t.test('a cancel after its worker stored the final, before the boss heard the result, answers the final', async (t) => {
  // The API answered the waited client from the final's acknowledgement; the client then asks to cancel.
  const { w1, b, job, term } = await waitedRunning(t)
  const written = await w1.finishWritingFinal(job.id, b.store)
  const answer = await term.onCancel(job.id)
  t.equal(answer?.state, 'succeeded', 'the finished job, unchanged (DELETE → 200), not a cancel request')
  t.notOk(answer?.cancelRequested, 'no cancel asked')
  t.notOk(w1.aborted.includes(job.id), 'the worker is not told to abort')
  await w1.deliver(term)
  await waitFor(() => b.finished.some((j) => j.id === job.id), { what: 'finished notice' })
  t.same(b.store.current(job.id), { ...written.stored!.job, payload: job.payload }, "the worker's final stands")
  await waitFor(() => indexEntriesOf(b, job.id) === 1, { what: 'listed once' })
})
