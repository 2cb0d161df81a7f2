/**
 * A dispatched job's running state is written to its batch's state record only if the job still
 * runs that attempt once BossSettings.runningWriteDelayMs has passed (worker/boss/commit.ts): a job
 * that finishes sooner never costs that write, one that runs longer is shown running.
 */
import t from 'tap'
import { jobIdOf, parseJobId } from '../../jobs/streams/index.js'
import { bench, FakeWorker, newJob } from '../helpers/boss-fakes.js'
import { waitFor } from '../helpers/wait.js'

const DELAY_MS = 150

function sevenJobs() {
  const batch = parseJobId(newJob().id)!.batch
  return { batch, jobs: Array.from({ length: 7 }, (_, i) => newJob({ id: jobIdOf(batch, i) })) }
}

t.test('jobs still running after the delay are written running; one write for the batch', async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const { batch, jobs } = sevenJobs()
  for (const j of jobs.slice(0, -1)) b.store.putSilently(j)
  b.store.put(jobs.at(-1)!)
  const term = b.term(1, { settings: { runningWriteDelayMs: DELAY_MS } })
  t.teardown(() => term.stop())
  const stateWrites = () => b.store.writes.filter((w) => w.kind === 'state' && w.key === batch).length
  await term.start()
  await waitFor(() => w1.starts.length === 7, { what: 'all seven dispatched' })
  const dispatchedAt = Date.now()
  t.equal(b.store.batches.get(batch)?.state?.state.jobs['0'], undefined, 'not written at dispatch')
  await waitFor(() => b.store.batches.get(batch)?.state?.state.jobs['6']?.state === 'running', {
    what: 'the running state written',
  })
  t.ok(Date.now() - dispatchedAt >= DELAY_MS - 20, 'written once the delay passed, not before')
  const running = jobs.filter((j) => b.store.batches.get(batch)?.state?.state.jobs[String(parseJobId(j.id)!.index)])
  t.equal(running.length, 7, 'every job that still runs is shown running')
  await new Promise((r) => setTimeout(r, DELAY_MS))
  t.ok(stateWrites() <= 2, `the batch's running states share its state writes (${stateWrites()})`)
})

t.test('jobs that finish within the delay never have their running state written', async (t) => {
  const w1 = new FakeWorker('w1', 8)
  const b = bench(w1)
  const { batch, jobs } = sevenJobs()
  for (const j of jobs.slice(0, -1)) b.store.putSilently(j)
  b.store.put(jobs.at(-1)!)
  const term = b.term(1, { settings: { runningWriteDelayMs: DELAY_MS, maskLingerMs: 10 } })
  t.teardown(() => term.stop())
  const stateWrites = () => b.store.writes.filter((w) => w.kind === 'state' && w.key === batch).length
  await term.start()
  await waitFor(() => w1.starts.length === 7, { what: 'all seven dispatched' })
  const acked = await term.onResults({ results: jobs.map((j) => w1.finish(j.id)) })
  t.equal(acked.acked.length, 7, 'seven results recorded')
  await waitFor(() => !b.store.batches.has(batch), { what: 'the batch closed' })
  await new Promise((r) => setTimeout(r, 2 * DELAY_MS))
  t.equal(stateWrites(), 0, 'no state record was written for the batch: no running write came due')
})
