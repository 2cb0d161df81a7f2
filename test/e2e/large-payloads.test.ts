/**
 * Large payloads do not live in the boss: 2,000 jobs with 900 KB payloads queued behind a busy
 * fleet, then run (workers read the payloads from the store), then 2,000 jobs with 900 KB results —
 * the boss's resident memory stays bounded throughout (it keeps payloads over 64 KB out of memory
 * and holds a result only while writing its final record).
 */
import t from 'tap'
import { readFileSync } from 'node:fs'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const JOBS = Number(process.env.BOSUN_LARGE_JOBS ?? 2000)
/** Jobs with large results: each result passes through the boss once, so fewer show the same bound. */
const RESULT_JOBS = Number(process.env.BOSUN_LARGE_RESULT_JOBS ?? 500)
const BYTES = 900 * 1024
/** A generous bound (measured figures are in README): far below 2,000 × 900 KB = 1.8 GB. */
const RSS_BOUND_MB = 400
t.setTimeout(900_000)

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('big'),
  workers: 3,
  concurrency: 2,
  functionsDir: e2eFunctionsDir(),
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

async function bossRssMb(): Promise<number> {
  const pid = (await cluster.clusterState()).boss!.pid
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
  return Math.round(kb / 1024)
}

async function post(body: unknown): Promise<string> {
  for (;;) {
    const r = await cluster.post('/jobs', body)
    if (r.status === 202) return r.body.id
    if (r.status !== 503 && r.status !== 429) throw new Error(`submit: ${r.status} ${JSON.stringify(r.body)}`)
    await new Promise((res) => setTimeout(res, 50))
  }
}

t.test(`${JOBS} jobs with 900 KB payloads, queued then run, then ${RESULT_JOBS} with 900 KB results`, async (t) => {
  const t0 = Date.now()
  const blockers = await Promise.all(
    Array.from({ length: 4 }, () => post({ function: 'sleep', payload: { ms: 600_000 } })),
  )
  await waitFor(async () => (await cluster.clusterState()).workers.reduce((n, w) => n + w.running, 0) === 4, {
    what: 'every slot busy',
  })
  const data = 'p'.repeat(BYTES - 100)
  const ids: string[] = []
  let peak = 0
  for (let i = 0; i < JOBS; i += 8) {
    ids.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(8, JOBS - i) }, () => post({ function: 'blob', payload: { data } })),
      )),
    )
    if (i % 200 === 0) peak = Math.max(peak, await bossRssMb())
  }
  await new Promise((r) => setTimeout(r, 1000))
  peak = Math.max(peak, await bossRssMb())
  t.comment(`queued: boss RSS peak ${peak} MB`)
  t.ok(peak < RSS_BOUND_MB, `boss RSS with ${JOBS} × 900 KB queued: ${peak} MB < ${RSS_BOUND_MB} MB`)
  t.comment(`queued in ${Math.round((Date.now() - t0) / 1000)} s`)
  for (const id of blockers) await cluster.del(`/jobs/${id}`)
  let runPeak = 0
  await waitFor(
    async () => {
      runPeak = Math.max(runPeak, await bossRssMb())
      const last = await cluster.get(`/jobs/${ids.at(-1)}`)
      return last.body?.state === 'succeeded'
    },
    { timeoutMs: 600_000, intervalMs: 500, what: 'the large-payload jobs run' },
  )
  for (const id of [ids[0]!, ids[Math.floor(ids.length / 2)]!, ids.at(-1)!]) {
    const j = (await cluster.get(`/jobs/${id}`)).body
    t.equal(j.state, 'succeeded')
    t.same(j.result, { length: data.length }, 'the worker read the whole payload from the store')
  }
  t.comment(`running: boss RSS peak ${runPeak} MB (${Math.round((Date.now() - t0) / 1000)} s)`)
  t.ok(runPeak < RSS_BOUND_MB, `boss RSS while they run: ${runPeak} MB`)
  const results: string[] = []
  let resultPeak = 0
  for (let i = 0; i < RESULT_JOBS; i += 50) {
    const r = await cluster.post('/jobs/batch', {
      jobs: Array.from({ length: Math.min(50, RESULT_JOBS - i) }, () => ({
        function: 'blob',
        payload: { bytes: BYTES - 2048 },
      })),
    })
    t.equal(r.status, 202)
    results.push(...r.body.jobs.map((j: { id: string }) => j.id))
    resultPeak = Math.max(resultPeak, await bossRssMb())
  }
  await waitFor(
    async () => {
      resultPeak = Math.max(resultPeak, await bossRssMb())
      return (await cluster.get(`/jobs/${results.at(-1)}`)).body?.state === 'succeeded'
    },
    { timeoutMs: 600_000, intervalMs: 500, what: 'the large-result jobs run' },
  )
  t.equal(
    ((await cluster.get(`/jobs/${results[0]}`)).body.result as string).length,
    BYTES - 2048,
    'a 900 KB result is stored whole',
  )
  t.comment(`large results: boss RSS peak ${resultPeak} MB`)
  t.ok(resultPeak < RSS_BOUND_MB, `boss RSS with ${RESULT_JOBS} × 900 KB results: ${resultPeak} MB`)
  t.comment(`done in ${Math.round((Date.now() - t0) / 1000)} s`)
})
