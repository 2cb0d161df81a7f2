/**
 * Schedules on a real cluster: a schedule every second for about 20 s (catchUp: all), with a kill -9
 * of the boss and then a SIGTERM of its successor in the middle — every due time in the window got
 * exactly one job (its idempotency key names the due time), none twice, none missing; the jobs ran.
 * And GET /schedules/:id shows what was fired.
 */
import t, { type Test } from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const SESSION_MS = 2000
const zk = await startZooKeeper()
const nats = await startNats()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

interface ListedJob {
  id: string
  state: string
  idempotencyKey?: string
}

/** A started cluster of `workers` workers with one schedule created on it. */
async function clusterWithSchedule(t: Test, workers: number, schedule: Record<string, unknown>) {
  const c = new TestCluster({
    zk,
    nats,
    cluster: uniqueName('sched'),
    workers,
    functionsDir: e2eFunctionsDir(),
    sessionTimeoutMs: SESSION_MS,
  })
  t.teardown(() => c.close())
  await c.start()
  const created = await c.post('/schedules', { cron: '* * * * * *', ...schedule })
  t.equal(created.status, 201, `created (${JSON.stringify(created.body).slice(0, 80)}…)`)
  return c
}

t.test('every second, with kill -9 and SIGTERM of the boss: each due time fired exactly once', async (t) => {
  const c = await clusterWithSchedule(t, 4, {
    id: 'tick',
    function: 'echo',
    payload: { from: 'schedule' },
    catchUp: 'all',
  })
  const createdAt = Date.now()

  await sleep(6000)
  const first = await c.bossProcess()
  await first.kill()
  await waitFor(
    async () => {
      const boss = (await c.clusterState()).boss
      return boss && boss.pid !== first.pid ? boss : undefined
    },
    { timeoutMs: 30_000, what: 'a boss after kill -9' },
  )
  await sleep(6000)
  const second = await c.bossProcess()
  t.equal(await second.stop(), 0, "the SIGTERM'd boss exits 0")
  await waitFor(
    async () => {
      const boss = (await c.clusterState()).boss
      return boss && boss.pid !== second.pid ? boss : undefined
    },
    { timeoutMs: 30_000, what: 'a boss after SIGTERM' },
  )
  await sleep(6000)
  const paused = await c.post('/schedules/tick/pause', {})
  t.equal(paused.status, 200)
  const pausedAt = Date.now()
  await sleep(2000) // a fire under way when the pause landed completes

  const jobs = await waitFor(
    async () => {
      const all: ListedJob[] = (await c.get('/jobs?function=echo&limit=1000')).body.jobs
      return all.length > 0 && all.every((j) => j.state === 'succeeded') ? all : undefined
    },
    { timeoutMs: 30_000, what: 'every fired job finished' },
  )
  const dues = jobs.map((j) => j.idempotencyKey ?? '').filter((k) => k.startsWith('schedule:tick:'))
  t.equal(dues.length, jobs.length, 'every echo job came from the schedule')
  const times = dues.map((k) => Date.parse(k.slice('schedule:tick:'.length))).sort((a, b) => a - b)
  t.equal(new Set(times).size, times.length, `no due time twice (${times.length} jobs)`)
  const missing = times.slice(1).filter((d, i) => d - times[i]! !== 1000)
  t.same(missing, [], 'no due time missing between the first and the last')
  t.ok(times[0]! - createdAt <= 1500, 'the first due time right after the creation')
  t.ok(pausedAt - times.at(-1)! <= 1500, 'the last right before the pause')
  t.ok(times.length >= 18, `about 20 s of seconds fired (${times.length})`)

  const view = (await c.get('/schedules/tick')).body
  t.equal(view.paused, true)
  t.equal(view.recent.length, Math.min(20, times.length), 'the latest due times (20 at most) with their jobs')
  t.equal(Date.parse(view.recent[0].due), times.at(-1), 'newest first')
})

t.test('overlap skip: a job longer than the period never overlaps the next', async (t) => {
  const c = await clusterWithSchedule(t, 3, { id: 'slow', function: 'sleep', payload: { ms: 2500 }, overlap: 'skip' })
  await sleep(9000)
  t.equal((await c.post('/schedules/slow/pause', {})).status, 200)
  const jobs = await waitFor(
    async () => {
      const all: (ListedJob & { startedAt?: string; finishedAt?: string })[] = (
        await c.get('/jobs?function=sleep&limit=1000')
      ).body.jobs
      return all.length > 0 && all.every((j) => j.state === 'succeeded') ? all : undefined
    },
    { timeoutMs: 30_000, what: 'the fired jobs finished' },
  )
  const runs = jobs
    .map((j) => [Date.parse(j.startedAt!), Date.parse(j.finishedAt!)] as const)
    .sort((a, b) => a[0] - b[0])
  const overlapping = runs.slice(1).filter(([start], i) => start < runs[i]![1])
  t.same(overlapping, [], `no job started before the previous one finished (${runs.length} jobs)`)
  t.ok(
    runs.length >= 2 && runs.length <= 5,
    `9 s of 2.5 s jobs: a few ran, the other due times skipped (${runs.length})`,
  )
  const view = (await c.get('/schedules/slow')).body
  const lastFired = Date.parse(view.recent[0].due)
  t.ok(Date.parse(view.lastDue) >= lastFired, 'due times after the last job were passed over, not owed')
})
