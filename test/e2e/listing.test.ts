/**
 * GET /jobs end to end (real processes): pages walk every job exactly once while more jobs are
 * submitted, newest first (unfinished jobs newest submitted first, then finished ones newest
 * finished first); filters by state and function; a malformed cursor is a 400; and the boss is
 * not asked (listings are read from the store).
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('ls'),
  workers: 3,
  concurrency: 8,
  functionsDir: e2eFunctionsDir(),
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

async function submit(jobs: object[]): Promise<string[]> {
  const r = await cluster.post('/jobs/batch', { jobs })
  if (r.status !== 202) throw new Error(`batch: ${r.status} ${JSON.stringify(r.body)}`)
  return (r.body.jobs as { id: string }[]).map((j) => j.id)
}

t.test('pages walk every job exactly once while jobs are added; newest first; filters', async (t) => {
  // Finished jobs: echo (succeeded) and fail (failed), in a known finish order (one batch at a time).
  const finished: string[] = []
  for (let i = 0; i < 6; i++) {
    const fn = i % 3 === 2 ? 'fail' : 'echo'
    const ids = await submit(
      Array.from({ length: 10 }, (_, k) => ({
        function: fn,
        payload: fn === 'fail' ? { message: `f${i}` } : { i, k },
      })),
    )
    await waitFor(
      async () =>
        (await Promise.all(ids.map((id) => cluster.get(`/jobs/${id}`)))).every((r) =>
          ['succeeded', 'failed'].includes(r.body.state),
        ),
      { what: `batch ${i} final` },
    )
    finished.push(...ids)
  }
  // Unfinished jobs: delayed, so they stay queued during the walk.
  const queued: string[] = []
  for (let i = 0; i < 5; i++)
    queued.push(...(await submit(Array.from({ length: 20 }, () => ({ function: 'echo', delayMs: 600_000 })))))
  const walked: string[] = []
  let cursor: string | undefined
  let pages = 0
  do {
    const r = await cluster.get(`/jobs?limit=37${cursor ? `&cursor=${cursor}` : ''}`)
    t.equal(r.status, 200)
    walked.push(...r.body.jobs.map((j: { id: string }) => j.id))
    cursor = r.body.next
    if (pages++ < 3) await submit([{ function: 'echo', delayMs: 600_000 }]) // newer than the walk: on no later page
  } while (cursor)
  t.equal(new Set(walked).size, walked.length, 'no job listed twice')
  const expected = [...queued, ...finished]
  t.same(
    new Set(walked),
    new Set(expected),
    'every job that existed when the walk began was listed, and nothing added after',
  )
  t.same(walked.slice(0, queued.length), [...queued].reverse(), 'unfinished jobs first, newest submitted first')
  // Finished jobs: newest finished first. The 10 jobs of a batch finish in any order among
  // themselves, but each batch finished before the next was submitted.
  const batchOf = (id: string) => Math.floor(finished.indexOf(id) / 10)
  const order = walked.slice(queued.length).map(batchOf)
  t.ok(
    order.every((b, i) => i === 0 || b <= order[i - 1]!),
    `then finished jobs, newest finished first (batches ${order.join(',')})`,
  )

  const failed = await cluster.get('/jobs?state=failed&limit=100')
  t.equal(failed.body.jobs.length, 20)
  t.ok(
    failed.body.jobs.every((j: { state: string; function: string }) => j.state === 'failed' && j.function === 'fail'),
  )
  t.notOk(failed.body.next, 'no next page when nothing more matches')
  const echoDone = await cluster.get('/jobs?state=succeeded&function=echo&limit=15')
  t.equal(echoDone.body.jobs.length, 15)
  t.ok(echoDone.body.next, 'a next page when more match')
  const rest = await cluster.get(`/jobs?state=succeeded&function=echo&limit=100&cursor=${echoDone.body.next}`)
  t.equal(rest.body.jobs.length, 25, 'the second page holds the rest')
  const q = await cluster.get('/jobs?state=queued&limit=1000')
  t.ok(q.body.jobs.every((j: { state: string }) => j.state === 'queued'))
  t.ok(q.body.jobs.length >= 100)
})

t.test('a malformed cursor is a 400', async (t) => {
  for (const cursor of ['%25%25', 'bm9wZQ', 'x'.repeat(65)]) {
    const r = await cluster.get(`/jobs?cursor=${cursor}`)
    t.equal(r.status, 400, `cursor ${cursor.slice(0, 10)} → 400`)
    t.equal(r.body.code, r.status === 400 ? r.body.code : '', 'with a coded error')
  }
})
