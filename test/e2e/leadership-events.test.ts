/**
 * Watching leadership fail over, from the API alone: with jobs being dispatched, the boss is killed
 * (kill -9), then its successor is stopped (SIGTERM). GET /cluster/leadership then shows both
 * changes — the first ended `crashed`, the second `sigterm` — with failover gaps consistent with
 * what this test measured, GET /cluster/events/stream delivered the events live as they happened,
 * and the API's GET /metrics counted both changes by reason and follows the epoch.
 */
import t from 'tap'
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

interface Term {
  epoch: number
  boss: { id: string }
  ended?: string
  after?: string
  gapBeforeMs?: number
  dispatchingAt?: string
}

interface Sse {
  id: string
  type: string
  epoch?: number
  data: Record<string, unknown>
  receivedAt: number
}

/** Collect the SSE stream in the background until the test ends. */
function follow(url: string, into: Sse[], signal: AbortSignal): void {
  void (async () => {
    const res = await fetch(url, { signal })
    const reader = res.body!.getReader()
    let buf = ''
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      buf += new TextDecoder().decode(value)
      let i
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const data = buf
          .slice(0, i)
          .split('\n')
          .find((l) => l.startsWith('data: '))
        buf = buf.slice(i + 2)
        if (data) into.push({ ...JSON.parse(data.slice(6)), receivedAt: Date.now() })
      }
    }
  })().catch(() => undefined)
}

t.test('kill -9 then SIGTERM of the boss: the leadership history and the live events show both', async (t) => {
  const c = new TestCluster({
    zk,
    nats,
    cluster: uniqueName('lead'),
    workers: 4,
    concurrency: 4,
    functionsDir: e2eFunctionsDir(),
    sessionTimeoutMs: SESSION_MS,
  })
  t.teardown(() => c.close())
  await c.start()
  const stop = new AbortController()
  t.teardown(() => stop.abort())
  const live: Sse[] = []
  follow(`${c.apiUrl}/cluster/events/stream`, live, stop.signal)

  const first = (await c.clusterState()).boss!
  await waitFor(async () => ((await c.get('/cluster/leadership')).body.terms[0]?.dispatchingAt ? true : undefined))

  // Keep jobs flowing so the workers see dispatches right up to the kill.
  let flowing = true
  const flow = (async () => {
    while (flowing) {
      const jobs = Array.from({ length: 20 }, () => ({ function: 'sleep', payload: { ms: 20 } }))
      await c.post('/jobs/batch', { jobs }).catch(() => undefined)
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  await new Promise((r) => setTimeout(r, 1000))
  const boss1 = await c.bossProcess()
  const killedAt = Date.now()
  await boss1.kill()
  const second = await waitFor(
    async () => {
      const s = await c.clusterState()
      return s.boss && s.boss.id !== first.id ? s.boss : undefined
    },
    { timeoutMs: 20_000, what: 'a boss after the kill' },
  )
  const term2 = await waitFor(
    async () => {
      const terms: Term[] = (await c.get('/cluster/leadership')).body.terms
      return terms.find((x) => x.epoch === second.epoch && x.dispatchingAt) ?? undefined
    },
    { timeoutMs: 20_000, what: 'the second term dispatching' },
  )
  const measuredGap = Date.parse(term2.dispatchingAt!) - killedAt

  await new Promise((r) => setTimeout(r, 1000))
  const boss2 = await c.bossProcess()
  const stoppedAt = Date.now()
  const exit = boss2.stop()
  const third = await waitFor(
    async () => {
      const s = await c.clusterState()
      return s.boss && s.boss.id !== second.id ? s.boss : undefined
    },
    { timeoutMs: 20_000, what: 'a boss after SIGTERM' },
  )
  t.equal(await exit, 0, 'the SIGTERM’d boss exits 0')
  flowing = false
  await flow

  const terms = await waitFor(
    async () => {
      const all: Term[] = (await c.get('/cluster/leadership')).body.terms
      return all[0]?.epoch === third.epoch && all[0].dispatchingAt && all.length >= 3 ? all : undefined
    },
    { timeoutMs: 20_000, what: 'the third term in the leadership history' },
  )
  const [t3, t2, t1] = terms
  t.match(t1, { epoch: first.epoch, boss: { id: first.id }, ended: 'crashed' })
  t.match(t2, { epoch: second.epoch, boss: { id: second.id }, after: 'crashed', ended: 'sigterm' })
  t.match(t3, { epoch: third.epoch, boss: { id: third.id }, after: 'sigterm' })
  t.comment(`kill -9: gap ${t2!.gapBeforeMs} ms (measured kill → dispatching ${measuredGap} ms)`)
  t.comment(
    `SIGTERM: gap ${t3!.gapBeforeMs} ms (measured signal → dispatching ${Date.parse(t3!.dispatchingAt!) - stoppedAt})`,
  )
  // The gap runs from the crashed boss's last dispatch the workers saw (shortly before the kill), bounded
  // by one session timeout before the next election (ZooKeeper may expire the session a little later).
  const gap2 = t2!.gapBeforeMs!
  t.ok(
    gap2 >= measuredGap - 500 && gap2 <= measuredGap + 1000,
    `kill -9 gap ${gap2} ms consistent with kill → dispatching (${measuredGap} ms)`,
  )
  t.ok(t2!.gapBeforeMs! >= SESSION_MS / 2, 'a crash costs about the session timeout')
  t.ok(t3!.gapBeforeMs! < SESSION_MS, `a SIGTERM hands over faster than a session timeout (${t3!.gapBeforeMs} ms)`)

  // The stream delivered every change live, in order.
  const seen = await waitFor(() => {
    const boss = live.filter((e) => e.type.startsWith('boss.'))
    return boss.some((e) => e.type === 'boss.active' && e.epoch === third.epoch) ? boss : undefined
  })
  const order = seen.map((e) => `${e.type}@${e.epoch}`)
  const at = (s: string) => order.indexOf(s)
  t.ok(at(`boss.elected@${second.epoch}`) >= 0, 'the elected event after the kill came live')
  t.ok(at(`boss.deposed@${second.epoch}`) > at(`boss.active@${second.epoch}`), 'then the SIGTERM deposition')
  t.ok(at(`boss.elected@${third.epoch}`) > at(`boss.deposed@${second.epoch}`), 'then the third election')
  t.match(
    seen.find((e) => e.type === 'boss.deposed' && e.epoch === second.epoch),
    { data: { reason: 'sigterm' } },
  )
  t.ok(
    live.find((e) => e.type === 'boss.elected' && e.epoch === second.epoch)!.receivedAt < stoppedAt,
    'the kill -9 election arrived before the SIGTERM, as it happened',
  )

  // The API's metrics moved with both changes.
  const metrics = await waitFor(
    async () => {
      const text = (await (await fetch(`${c.apiUrl}/metrics`)).text()).split('\n')
      const value = (prefix: string) => Number(text.find((l) => l.startsWith(`${prefix} `))?.slice(prefix.length + 1))
      const m = {
        crashed: value('bosun_leader_changes_total{reason="crashed"}'),
        sigterm: value('bosun_leader_changes_total{reason="sigterm"}'),
        epoch: value('bosun_boss_epoch'),
        gaps: value('bosun_failover_gap_seconds_count'),
      }
      return m.epoch === third.epoch && m.sigterm === 1 ? m : undefined
    },
    { timeoutMs: 20_000, what: "the API's metrics after both changes" },
  )
  t.same(metrics, { crashed: 1, sigterm: 1, epoch: third.epoch, gaps: 2 }, 'leader changes by reason, epoch, gaps')

  // A worker joining, and a worker killed mid-job: told by the acting boss.
  const joiner = c.addWorker()
  const joined = await waitFor(async () => {
    const { events } = (await c.get('/cluster/events?type=worker.joined')).body as { events: Sse[] }
    return events.find((e) => e.data.worker === joiner.name)
  })
  t.equal(joined.epoch, third.epoch, 'worker.joined told by the third boss')
  const long = await c.post('/jobs/batch', {
    jobs: Array.from({ length: 6 }, () => ({ function: 'sleep', payload: { ms: 20_000 } })),
  })
  const running = await waitFor(async () => {
    const job = (await c.get(`/jobs/${long.body.jobs[0].id}`)).body
    return job.state === 'running' ? job : undefined
  })
  const victimId: string = running.worker
  const victim = c.workers.find((w) => w.name === victimId)!
  await victim.kill()
  const ofType = async (type: string) =>
    ((await c.get(`/cluster/events?type=${type}&limit=1000`)).body as { events: Sse[] }).events
  const gone = await waitFor(
    async () => {
      const left = (await ofType('worker.left')).find((e) => e.data.worker === victimId)
      const again = (await ofType('job.redispatched')).find((e) => e.data.worker === victimId)
      return left && again ? { left, again } : undefined
    },
    { timeoutMs: 20_000, what: 'worker.left and job.redispatched' },
  ).catch(async (err: unknown) => {
    // What the cluster showed instead: every retained event and the long jobs' states.
    const { events } = (await c.get('/cluster/events?limit=1000')).body as { events: Sse[] }
    t.comment(`victim ${victimId}, killed; events newest first:`)
    for (const e of events) t.comment(`  ${e.type}@${String(e.epoch)} ${JSON.stringify(e.data)}`)
    for (const j of long.body.jobs as { id: string }[]) {
      const job = (await c.get(`/jobs/${j.id}`)).body
      t.comment(`  job ${j.id}: ${String(job.state)} on ${String(job.worker)}, attempts ${String(job.attempts)}`)
    }
    t.comment(`  cluster: ${JSON.stringify(await c.clusterState())}`)
    throw err
  })
  t.ok((gone.again.data.jobs as number) >= 1, `its ${String(gone.again.data.jobs)} running job(s) re-dispatched`)
  t.equal(gone.left.data.reason, 'exited', 'a killed worker left: no process answers on NATS')

  // A worker stopped with SIGTERM while it runs a job withdraws first (it drains, still connected).
  const busy = await waitFor(async () => {
    const { workers } = await c.clusterState()
    return workers.find((w) => w.running > 0 && w.id !== victimId)
  })
  const drained = c.workers.find((w) => w.name === busy.id)!
  const stopped = drained.stop()
  const withdrew = await waitFor(
    async () => {
      const { events } = (await c.get('/cluster/events?type=worker.left')).body as { events: Sse[] }
      return events.find((e) => e.data.worker === busy.id)
    },
    { timeoutMs: 20_000, what: 'worker.left of the SIGTERM’d worker' },
  )
  t.equal(withdrew.data.reason, 'drained', 'a draining worker still answers on NATS')
  t.equal(await stopped, 0, 'and exits 0')
})
