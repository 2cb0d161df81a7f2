/**
 * Redrive on the bench (worker/boss/redrives.ts): a failed job is reopened once per run (same id,
 * attempts from 0, history kept), only failed or cancelled jobs are, a repeated request is answered
 * and never starts a second run, and a boss that dies between the reopened records and their batch
 * leaves them to its successor, which submits the batch.
 */
import t, { type Test } from 'tap'
import type { Job } from '../../jobs/model.js'
import { newJob, oneJobRunning } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

const boom = { ok: false as const, error: { message: 'boom', code: 'E_USER' } }

async function failedJob(t: Test) {
  const { w1, b, job, term } = await oneJobRunning(t)
  w1.finish(job.id, boom)
  await w1.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'failed', { what: 'failed' })
  return { w1, b, job, term }
}

t.test('a failed job retried runs again: same id, run 1, attempts from 0, history of both runs', async (t) => {
  const { w1, b, job, term } = await failedJob(t)
  const reply = await term.onRetry({ ids: [job.id], requestId: 'r1', maxAttempts: 2 })
  t.match(reply.results, [
    { id: job.id, outcome: 'retried', job: { state: 'queued', run: 1, attempts: 0, maxAttempts: 2 } },
  ])
  await waitFor(() => w1.running.get(job.id)?.attempt === 1, { what: 'run 1 dispatched' })
  t.same(w1.starts, [job.id, job.id], 'started once per run')
  t.match(b.store.current(job.id), { state: 'running', run: 1 })
  w1.finish(job.id, { ok: true, result: 'fine' })
  await w1.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'succeeded', { what: 'succeeded' })
  const rec = b.store.current(job.id)!
  t.equal(rec.run, 1)
  t.same(
    rec.history!.map((e) => [e.run, e.attempt, e.outcome]),
    [
      [0, 1, 'failed'],
      [1, 1, 'succeeded'],
    ],
  )
  await waitFor(() => b.store.indexed.some((e) => e.id === job.id && e.state === 'succeeded'), {
    what: 'indexed as succeeded',
  })

  const again = await term.onRetry({ ids: [job.id], requestId: 'r1' })
  t.equal(again.results[0]!.outcome, 'retried', 'the same request is answered as before')
  t.equal((again.results[0] as { job: Job }).job.state, 'succeeded', 'with the job as it stands')
  const other = await term.onRetry({ ids: [job.id], requestId: 'r2' })
  t.same(other.results, [{ id: job.id, outcome: 'conflict', state: 'succeeded' }], 'a succeeded job is not retried')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(w1.starts.length, 2, 'no third run')
})

t.test('only failed or cancelled jobs are retried; a job reopened twice at once runs once', async (t) => {
  const { w1, b, job, term } = await failedJob(t)
  const running = newJob()
  b.store.put(running)
  await waitFor(() => w1.running.has(running.id), { what: 'second job running' })
  const reply = await term.onRetry({ ids: [running.id, 'nope', job.id], requestId: 'a' })
  t.same(reply.results.slice(0, 2), [
    { id: running.id, outcome: 'conflict', state: 'running' },
    { id: 'nope', outcome: 'not-found' },
  ])
  t.equal(reply.results[2]!.outcome, 'retried')
  const concurrent = await Promise.all([
    term.onRetry({ ids: [job.id], requestId: 'b' }),
    term.onRetry({ ids: [job.id], requestId: 'c' }),
  ])
  t.same(
    concurrent.map((r) => r.results[0]!.outcome),
    ['conflict', 'conflict'],
    'already reopened by request a',
  )
  await waitFor(() => w1.starts.filter((id) => id === job.id).length === 2, { what: 'run 1' })
  await new Promise((r) => setTimeout(r, 100))
  t.equal(w1.starts.filter((id) => id === job.id).length, 2, 'one run per retry')
  t.equal(b.store.reopenWrites.length, 1, 'one reopened record')
})

t.test('a job whose final record is not settled yet is not reopened (busy), then is', async (t) => {
  const { w1, b, job, term } = await oneJobRunning(t)
  let open!: () => void
  b.store.closeGate = new Promise<void>((r) => (open = r)) // its batch's close (its settling) hangs
  w1.finish(job.id, boom)
  await w1.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'failed', { what: 'final record written' })
  const early = await term.onRetry({ ids: [job.id], requestId: 'r' })
  t.same(early.results, [{ id: job.id, outcome: 'busy' }], 'not reopened while a boss change could run it again')
  t.equal(b.store.reopenWrites.length, 0)
  open()
  const later = await term.onRetry({ ids: [job.id], requestId: 'r' })
  t.equal(later.results[0]!.outcome, 'retried', 'reopened once settled')
})

t.test('a retried job is cancelled before the watch delivered its run: it never runs', async (t) => {
  const { w1, b, job, term } = await failedJob(t)
  b.store.reopenUnseen = true // its run's batch is stored; the watch has not delivered it yet
  t.equal((await term.onRetry({ ids: [job.id], requestId: 'r' })).results[0]!.outcome, 'retried')
  const cancelled = await term.onCancel(job.id)
  t.match(cancelled, { id: job.id, state: 'cancelled', run: 1 }, 'found through its reopened record')
  t.match(b.store.current(job.id), { state: 'cancelled', run: 1 })
  await new Promise((r) => setTimeout(r, 100))
  t.same(w1.starts, [job.id], 'the new run never started')
})

t.test('a boss dying between the reopened records and their batch: its successor submits the batch', async (t) => {
  const { w1, b, job, term } = await failedJob(t)
  const other = newJob()
  b.store.put(other)
  await waitFor(() => w1.running.has(other.id), { what: 'other running' })
  w1.finish(other.id, boom)
  await w1.deliver(term)
  await waitFor(() => b.store.current(other.id)?.state === 'failed', { what: 'other failed' })
  // Let the checkpoint pass both final records, then hang the batch's submission.
  await waitFor(() => (b.store.checkpoint?.doneSeq ?? 0) >= (b.store.finalSeq(other.id) ?? Infinity), {
    what: 'checkpoint past the final records',
  })
  const submit = b.store.submitReopened.bind(b.store)
  b.store.submitReopened = () => new Promise<boolean>(() => {}) // the boss dies in the middle
  void term.onRetry({ ids: [job.id, other.id], requestId: 'r' }).catch(() => undefined) // never answered
  await waitFor(() => b.store.reopenWrites.length === 2, { what: 'reopened records written' })
  await new Promise((r) => setTimeout(r, 150)) // checkpoint ticks while the batch is not submitted
  const seqs = [job.id, other.id].map((id) => b.store.finalSeq(id)!)
  t.ok((b.store.checkpoint?.doneSeq ?? 0) < Math.min(...seqs), 'the checkpoint stays below the reopened records')
  term.stop()
  b.store.submitReopened = submit
  t.match(b.store.current(job.id), { state: 'queued', run: 1 }, 'readers see the job queued meanwhile')

  const next = b.term(2)
  t.teardown(() => next.stop())
  await next.start()
  await waitFor(() => w1.running.has(job.id) && w1.running.has(other.id), { what: 'both run again', timeoutMs: 5000 })
  for (const id of [job.id, other.id]) w1.finish(id, { ok: true, result: 1 })
  await w1.deliver(next)
  await waitFor(() => [job.id, other.id].every((id) => b.store.current(id)?.state === 'succeeded'), {
    what: 'both succeeded',
  })
  t.same(
    [job.id, other.id].map((id) => w1.starts.filter((s) => s === id).length),
    [2, 2],
    'each ran once per run',
  )
})

t.test("a last run's result sent again (its acknowledgement lost) is not taken for the new run's", async (t) => {
  const { w1, b, job, term } = await oneJobRunning(t)
  const first = w1.finish(job.id, boom)
  await w1.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'failed', { what: 'failed' })
  t.equal((await term.onRetry({ ids: [job.id], requestId: 'r' })).results[0]!.outcome, 'retried')
  await waitFor(() => w1.running.get(job.id)?.run === 1, { what: 'run 1 running on the same worker' })
  const reply = await term.onResults({ results: [first] }) // run 0's result again, attempt 1 on w1
  t.same(reply.acked, [first.jobId], 'acknowledged: nothing to record')
  t.match(b.store.current(job.id), { state: 'running', run: 1 }, 'run 1 still running')
  w1.finish(job.id, { ok: true, result: 'fine' })
  await w1.deliver(term)
  await waitFor(() => b.store.current(job.id)?.state === 'succeeded', { what: 'run 1 succeeded' })
})
