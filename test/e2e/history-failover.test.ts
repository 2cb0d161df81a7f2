/**
 * A cluster that has run for a while must fail over as fast as a new one (guarantee 5): with
 * 200,000 finished jobs retained (submitted through POST /jobs/batch and run), kill -9 and then
 * SIGTERM of the boss while 24 jobs of 3 s run on live workers — none of them runs twice, all
 * succeed, and a job submitted after the signal is final within session timeout + 1 s (kill -9)
 * or 1 s (SIGTERM). The history bench runs the same at 1,000,000 (npm run bench:history).
 */
import t, { type Test } from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect } from '@nats-io/transport-node'
import { jetstreamManager } from '@nats-io/jetstream'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, type BosunProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const SESSION_MS = 2000
const HISTORY = Number(process.env.BOSUN_HISTORY_JOBS ?? 200_000)
const BATCH = 1000
t.setTimeout(900_000)

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const name = uniqueName('hist')
// The backlog is bounded as a careful operator would (past it, submits get 429 and are retried).
const cluster = new TestCluster({
  zk,
  nats,
  cluster: name,
  workers: 4,
  concurrency: 16,
  functionsDir: e2eFunctionsDir(),
  sessionTimeoutMs: SESSION_MS,
  env: { BOSUN_MAX_QUEUED_JOBS: '20000' },
})
const nc = await connect({ servers: nats.url })
t.teardown(async () => {
  await nc.close()
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

async function post(path: string, body: unknown): Promise<{ status: number; body: any }> {
  for (;;) {
    const r = await cluster.post(path, body).catch(() => ({ status: 0, body: undefined }))
    if (r.status !== 503 && r.status !== 0 && r.status !== 429) return r
    await new Promise((res) => setTimeout(res, 50))
  }
}

t.test(`fill: ${HISTORY} finished jobs retained`, async (t) => {
  const t0 = Date.now()
  const ids: string[] = []
  for (let i = 0; i < HISTORY; i += BATCH * 4) {
    const rs = await Promise.all(
      Array.from({ length: Math.min(4, Math.ceil((HISTORY - i) / BATCH)) }, () =>
        post('/jobs/batch', { jobs: Array.from({ length: BATCH }, () => ({ function: 'noop' })) }),
      ),
    )
    for (const r of rs) {
      t.equal(r.status, 202)
      ids.push(r.body.jobs.at(-1).id)
    }
  }
  const jsm = await jetstreamManager(nc)
  // A batch's submit message is deleted once every job of it is final and durable (DONE holds groups
  // of final records, so its message count does not count them).
  await waitFor(async () => (await jsm.streams.info(`bosun_${name}_submit`)).state.messages === 0, {
    timeoutMs: 660_000,
    intervalMs: 1000,
    what: `${HISTORY} jobs final, every batch closed`,
  })
  t.comment(`filled ${HISTORY} finished jobs in ${Date.now() - t0} ms`)
})

function runsFile(): string {
  const f = join(tmpdir(), `${uniqueName('hist-runs')}.txt`)
  writeFileSync(f, '')
  return f
}

function starts(file: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const id = line.split(' ')[0]!
    out.set(id, (out.get(id) ?? 0) + 1)
  }
  return out
}

async function failover(t: Test, how: 'kill -9' | 'SIGTERM', boundMs: number): Promise<void> {
  const file = runsFile()
  const r = await post('/jobs/batch', {
    jobs: Array.from({ length: 24 }, () => ({ function: 'start', payload: { file, ms: 3000 } })),
  })
  t.equal(r.status, 202)
  const ids: string[] = r.body.jobs.map((j: { id: string }) => j.id)
  await waitFor(() => starts(file).size === 24, { timeoutMs: 30_000, what: '24 jobs running' })
  const before = await cluster.clusterState()
  const boss: BosunProcess = await cluster.bossProcess()
  const signalledAt = Date.now()
  if (how === 'kill -9') await boss.kill()
  else void boss.stop()
  cluster.workers.splice(cluster.workers.indexOf(boss), 1)
  const probe = await post('/jobs', { function: 'echo', payload: 'after the signal' })
  t.equal(probe.status, 202, 'a job submitted after the signal is accepted')
  const final = await cluster.waitJob(probe.body.id, 60_000)
  const tookMs = Date.now() - signalledAt
  t.equal(final.state, 'succeeded')
  t.ok(
    tookMs <= boundMs,
    `${how}: the job submitted after the signal was final ${tookMs} ms after it (bound ${boundMs} ms)`,
  )
  const after = await cluster.clusterState()
  t.ok(after.boss && after.boss.epoch > before.boss!.epoch, 'a new boss with a greater epoch')
  const jobs = await Promise.all(ids.map((id) => cluster.waitJob(id, 60_000)))
  t.ok(
    jobs.every((j) => j.state === 'succeeded' && j.attempts === 1),
    'all 24 succeeded at their first attempt',
  )
  const runs = starts(file)
  t.same(
    [...runs.values()].filter((n) => n > 1),
    [],
    'none of the 24 jobs running across the boss change ran twice',
  )
  t.equal(runs.size, 24)
}

t.test('kill -9 of the boss with the history retained', async (t) => {
  await failover(t, 'kill -9', SESSION_MS + 1000)
})

t.test('SIGTERM of the boss with the history retained', async (t) => {
  if (cluster.workers.length < 3) cluster.addWorker()
  await cluster.waitReady(2)
  await failover(t, 'SIGTERM', 1000)
})
