/**
 * Prometheus metrics on a real cluster (real ZooKeeper, real nats-server, the built processes): each
 * worker serves GET /metrics on its METRICS_PORT, the API on GET /metrics. A job run shows up in the
 * worker's and the API's counters; the boss reports itself; killing it (-9) moves the survivor's
 * is_boss and epoch, and the API's leader-change counter and failover gap (from the cluster
 * events); a stopped worker closes its metrics port and exits 0.
 */
import t from 'tap'
import { freePort, startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, type BosunProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  return line === undefined ? undefined : Number(line.slice(prefix.length))
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url)
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`)
  return res.text()
}

const zk = await startZooKeeper()
const nats = await startNats()
const cluster = new TestCluster({ zk, nats, cluster: uniqueName('metrics'), workers: 0, concurrency: 2 })
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
const ports = [await freePort(), await freePort()]
const workers: BosunProcess[] = ports.map((p) => cluster.addWorker({ METRICS_PORT: String(p) }))
const metricsUrl = (w: BosunProcess) => `http://127.0.0.1:${ports[workers.indexOf(w)]}/metrics`
await cluster.start(120_000, 1)

t.test('a job counted by the worker that ran it and by the API; the boss reports itself', async (t) => {
  const state = await cluster.clusterState()
  const boss = workers.find((w) => w.pid === state.boss?.pid)!
  const runner = workers.find((w) => w !== boss)!
  t.ok(boss && runner, 'one boss, one worker')
  const res = await cluster.post('/jobs?wait=10000', { function: 'echo', payload: { n: 1 } })
  t.equal(res.status, 200, JSON.stringify(res.body))
  t.equal(res.body.state, 'succeeded')

  const ran = await scrape(metricsUrl(runner))
  t.equal(sample(ran, 'bosun_jobs_finished_total', 'function="echo",state="succeeded"'), 1)
  t.equal(sample(ran, 'bosun_job_duration_seconds_count', 'function="echo"'), 1)
  t.equal(sample(ran, 'bosun_job_queue_wait_seconds_count', 'function="echo"'), 1)
  t.equal(sample(ran, 'bosun_is_boss'), 0)
  t.equal(sample(ran, 'bosun_jobs_running'), 0)
  t.equal(sample(ran, 'bosun_boss_epoch'), state.boss!.epoch, 'knows the boss epoch')
  t.equal(sample(ran, 'bosun_zookeeper_connected'), 1)
  t.equal(sample(ran, 'bosun_nats_connected'), 1)
  t.ok(sample(ran, 'bosun_nats_rtt_seconds')! >= 0, 'a NATS round trip')
  t.match(ran, /^process_resident_memory_bytes /m, 'default process metrics')

  // The boss's queue gauges follow its load reports (every 250 ms): one taken while the job was
  // still queued may be the latest for a moment after the job finished.
  const bossText = await waitFor(
    async () => {
      const text = await scrape(metricsUrl(boss))
      return sample(text, 'bosun_jobs_queued') === 0 ? text : undefined
    },
    { timeoutMs: 5000, what: "the boss's next load report" },
  )
  t.equal(sample(bossText, 'bosun_is_boss'), 1)
  t.equal(sample(bossText, 'bosun_boss_epoch'), state.boss!.epoch)
  t.equal(sample(bossText, 'bosun_jobs_queued'), 0)

  const api = await scrape(`${cluster.apiUrl}/metrics`)
  t.equal(sample(api, 'bosun_jobs_submitted_total', 'function="echo"'), 1)
  t.equal(sample(api, 'bosun_http_request_duration_seconds_count', 'method="POST",route="/jobs",status="200"'), 1)
  t.equal(sample(api, 'bosun_workers'), 1)
  t.equal(sample(api, 'bosun_boss_epoch'), state.boss!.epoch)
  t.equal(sample(api, 'bosun_zookeeper_connected'), 1)

  const stats = await waitFor(
    async () => {
      const s = (await cluster.get('/cluster/stats')).body
      return s.epoch === state.boss!.epoch && s.finished >= 1 ? s : undefined
    },
    { timeoutMs: 10_000, what: "GET /cluster/stats counts the boss's finished job" },
  )
  t.match(stats, { since: state.boss!.since, queued: 0, running: 0, finished: 1 }, 'the load report, from the boss')

  const other = await fetch(metricsUrl(runner).replace('/metrics', '/other'))
  t.equal(other.status, 404, 'only /metrics')
})

t.test('kill -9 the boss: the survivor becomes boss, its epoch and leader changes move', async (t) => {
  const before = (await cluster.clusterState()).boss!
  const boss = workers.find((w) => w.pid === before.pid)!
  const survivor = workers.find((w) => w !== boss)!
  const apiBefore = await scrape(`${cluster.apiUrl}/metrics`)
  t.equal(sample(apiBefore, 'bosun_leader_changes_total', 'reason="crashed"'), undefined, 'no change seen yet')
  await boss.kill()
  const after = await waitFor(
    async () => {
      const text = await scrape(metricsUrl(survivor))
      return sample(text, 'bosun_is_boss') === 1 ? text : undefined
    },
    { timeoutMs: 30_000, what: 'the survivor reports itself boss' },
  )
  t.ok(sample(after, 'bosun_boss_epoch')! > before.epoch, 'a newer epoch')
  const api = await waitFor(
    async () => {
      const text = await scrape(`${cluster.apiUrl}/metrics`)
      const changed = sample(text, 'bosun_leader_changes_total', 'reason="crashed"') === 1
      return sample(text, 'bosun_boss_epoch')! > before.epoch && changed ? text : undefined
    },
    { timeoutMs: 30_000, what: 'the API sees the new epoch and counts the change' },
  )
  t.equal(sample(api, 'bosun_failover_gap_seconds_count'), 1, 'one failover gap observed')
  const gap = sample(api, 'bosun_failover_gap_seconds_sum')!
  t.ok(gap > 0.5 && gap < 30, `the gap of a kill -9 (${gap} s) is about a session timeout`)
  t.equal(sample(api, 'bosun_workers'), 0, 'the survivor is the boss: no worker runs jobs')
  const stats = await waitFor(
    async () => {
      const s = (await cluster.get('/cluster/stats')).body
      return s.epoch > before.epoch ? s : undefined
    },
    { timeoutMs: 10_000, what: 'GET /cluster/stats from the new boss' },
  )
  t.equal(stats.finished, 0, "the count is the new term's")
})

t.test('SIGTERM: the metrics port is closed and the worker exits 0', async (t) => {
  const survivor = workers.find((w) => w.running)!
  t.equal(await survivor.stop(), 0)
  await t.rejects(fetch(metricsUrl(survivor)), 'nothing listens any more')
})
