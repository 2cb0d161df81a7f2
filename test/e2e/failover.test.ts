/**
 * Failover end to end: kill -9 of the boss mid-run, kill -9 of a worker mid-job, SIGTERM of the boss,
 * and a CPU-bound function that must not cost its worker its ZooKeeper session.
 */
import t, { type Test } from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const SESSION_MS = 2000
const zk = await startZooKeeper()
const nats = await startNats()
const functionsDir = e2eFunctionsDir()

function runsFile(): string {
  const f = join(tmpdir(), `${uniqueName('runs')}.txt`)
  writeFileSync(f, '')
  return f
}
function runLines(file: string): string[][] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' '))
}

async function newCluster(t: Test, workers = 4, env: Record<string, string> = {}): Promise<TestCluster> {
  const c = new TestCluster({
    zk,
    nats,
    cluster: uniqueName('fo'),
    workers,
    concurrency: 8,
    functionsDir,
    sessionTimeoutMs: SESSION_MS,
    env,
  })
  t.teardown(() => c.close())
  await c.start()
  return c
}

t.teardown(async () => {
  await nats.close()
  await zk.close()
})

t.test('kill -9 of the boss during 1,000 short jobs: all succeed, none runs twice', async (t) => {
  const c = await newCluster(t)
  const file = runsFile()
  const before = await c.clusterState()
  const ids: string[] = []
  let killedAt = 0
  const submit = async (from: number, to: number) => {
    for (let i = from; i < to; i += 100) {
      const jobs = Array.from({ length: Math.min(100, to - i) }, (_, k) => ({
        function: 'count',
        payload: { file, n: i + k },
      }))
      for (;;) {
        const r = await c.post('/jobs/batch', { jobs })
        if (r.status === 202) {
          ids.push(...r.body.jobs.map((j: { id: string }) => j.id))
          break
        }
        t.equal(r.status, 503, 'only a 503 (no boss) may refuse the batch')
        await new Promise((res) => setTimeout(res, 100))
      }
    }
  }
  await submit(0, 500)
  const boss = await c.bossProcess()
  await boss.kill()
  killedAt = Date.now()
  await submit(500, 1000)
  const after = await waitFor(
    async () => {
      const s = await c.clusterState()
      return s.boss && s.boss.id !== before.boss!.id ? s : undefined
    },
    { timeoutMs: 20_000, what: 'new boss' },
  )
  t.ok(after.boss!.epoch > before.boss!.epoch, 'the new boss has a greater epoch')
  await waitFor(() => new Set(runLines(file).map(([id]) => id)).size >= 1000, {
    timeoutMs: 60_000,
    what: 'all 1000 ran',
  })
  const lines = runLines(file)
  const counts = new Map<string, number>()
  for (const [id] of lines) counts.set(id!, (counts.get(id!) ?? 0) + 1)
  const twice = [...counts.values()].filter((n) => n > 1).length
  t.equal(twice, 0, 'no job ran twice (the boss died, no worker did)')
  for (const id of ids.filter((_, i) => i % 97 === 0)) t.equal((await c.waitJob(id)).state, 'succeeded')
  const firstAfter = lines.length > 0 ? Date.now() - killedAt : 0
  t.comment(
    `failover: new boss epoch ${after.boss!.epoch}; ${lines.length} executions for 1000 jobs; ` +
      `${firstAfter} ms from kill to completion`,
  )
})

t.test('kill -9 of a worker mid-job: re-run on another worker within session timeout + 1 s', async (t) => {
  const c = await newCluster(t)
  const file = runsFile()
  const r = await c.post('/jobs', { function: 'start', payload: { file, ms: 60_000 }, timeoutMs: 120_000 })
  await waitFor(() => runLines(file).length === 1, { what: 'job started' })
  const [, , pid] = runLines(file)[0]!
  const victim = c.workers.find((w) => String(w.pid) === pid)!
  t.ok(victim, 'found the worker running it')
  await victim.kill()
  const killedAt = Date.now()
  await waitFor(() => runLines(file).length === 2, { timeoutMs: SESSION_MS + 10_000, what: 'job re-run' })
  const gap = Date.now() - killedAt
  t.ok(gap <= SESSION_MS + 1000 + 500, `re-run ${gap} ms after the kill (session ${SESSION_MS} ms)`)
  t.not(runLines(file)[1]![2], pid, 'on another worker')
  await c.del(`/jobs/${r.body.id}`)
})

t.test(
  'SIGTERM of the boss: a new boss in under a second (it resigns, no session timeout), the old one exits 0',
  async (t) => {
    const c = await newCluster(t, 3)
    const before = await c.clusterState()
    const boss = await c.bossProcess()
    const stoppedAt = Date.now()
    const exit = boss.stop()
    const after = await waitFor(
      async () => {
        const s = await c.clusterState()
        return s.boss && s.boss.id !== before.boss!.id ? s : undefined
      },
      { timeoutMs: 10_000, intervalMs: 10, what: 'new boss' },
    )
    const seenMs = Date.now() - stoppedAt
    const electedMs = Date.parse(after.boss!.since) - stoppedAt
    t.comment(`SIGTERM failover: new boss elected ${electedMs} ms after the signal, seen by the API after ${seenMs} ms`)
    t.ok(after.boss!.epoch > before.boss!.epoch)
    // kill -9 would take the session timeout (2 s): under a second means the boss resigned its node.
    t.ok(electedMs >= 0 && electedMs < 1000, `the new boss was elected within a second of SIGTERM (${electedMs} ms)`)
    t.equal(await exit, 0, 'exit code 0')
    const r = await c.post('/jobs?wait=10000', { function: 'echo', payload: 'after' })
    t.equal(r.body.state, 'succeeded')
  },
)

t.test('a CPU-bound function does not cost its worker its ZooKeeper session', async (t) => {
  const c = await newCluster(t, 2)
  const before = await c.clusterState()
  const worker = before.workers[0]!
  const r = await c.post('/jobs?wait=30000', { function: 'spin', payload: { ms: 3 * SESSION_MS }, timeoutMs: 60_000 })
  t.equal(r.body.state, 'succeeded')
  t.equal(r.body.worker, worker.id)
  const after = await c.clusterState()
  t.same(after.boss, before.boss, 'boss unchanged')
  t.same(
    after.workers.map((w) => w.id),
    before.workers.map((w) => w.id),
    'worker kept its registration',
  )
  const proc = c.workers.find((w) => w.pid === worker.pid)!
  t.notMatch(proc.logs(), /expired|session lost/i, 'no session expiry in its log')
})

t.test('SIGTERM of a worker mid-job: it finishes a short job, hands back a long one, exits 0', async (t) => {
  // The boss and one runner (the victim) first, so both jobs run on the victim; another runner joins
  // as the victim is stopped, to take the long job it hands back.
  const grace = 5000
  const c = await newCluster(t, 2, { WORKER_SHUTDOWN_GRACE_MS: String(grace) })
  const file = runsFile()
  const state = await c.clusterState()
  const victimId = state.workers[0]!.id
  const victim = c.workers.find((w) => w.pid === state.workers[0]!.pid)!
  const long = await c.post('/jobs', { function: 'start', payload: { file, ms: 60_000 }, timeoutMs: 120_000 })
  const short = await c.post('/jobs', { function: 'start', payload: { file, ms: grace - 1500 } })
  await waitFor(() => runLines(file).length === 2, { what: 'both jobs started' })
  t.same(
    runLines(file).map(([, , pid]) => pid),
    [String(victim.pid), String(victim.pid)],
    'both jobs run on the victim',
  )
  c.addWorker()
  const stoppedAt = Date.now()
  const code = await victim.stop()
  t.equal(code, 0, 'exit code 0')
  t.ok(Date.now() - stoppedAt < 10_000, 'within 10 s')
  const s = await c.waitJob(short.body.id, 15_000)
  t.equal(s.state, 'succeeded', 'the short job finished within the grace')
  t.equal(s.worker, victimId, 'on the stopped worker')
  t.equal(runLines(file).filter(([id]) => id === short.body.id).length, 1, 'the short job ran once')
  t.equal(s.attempts, 1)
  await waitFor(() => runLines(file).filter(([id]) => id === long.body.id).length === 2, {
    timeoutMs: 30_000,
    what: 'long job handed back and re-run',
  })
  const rerun = runLines(file).filter(([id]) => id === long.body.id)[1]!
  t.not(rerun[2], String(victim.pid), 're-run on another worker')
  const j = (await c.get(`/jobs/${long.body.id}`)).body
  t.equal(j.state, 'running', 'the long job runs again')
  t.equal(j.attempts, 1, 'a hand-back does not count as a failed attempt')
  await c.del(`/jobs/${long.body.id}`)
})
