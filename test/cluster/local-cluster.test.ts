/**
 * `npm start` end to end: the launcher (dist/scripts/cluster.js, built by `npm test`) starts
 * ZooKeeper, NATS, the real api and 2 workers from the repository's Procfile; a job submitted with
 * ?wait runs on the worker that is not the boss; Ctrl-C (SIGINT) stops everything, servers
 * included, and no process it started survives.
 */
import t from 'tap'
import { portFree } from '../../scripts/lib/servers.js'
import { startLauncher, survivors } from './launcher.js'

t.test('local cluster: ready, runs an echo job, SIGINT leaves nothing behind', async (t) => {
  const l = await startLauncher(['worker=2'], { ZK_SESSION_TIMEOUT_MS: '3000', LOG_LEVEL: 'info' })
  t.teardown(() => l.destroy())
  const pids = await l.ready()

  t.same(
    Object.keys(pids.processes).sort(),
    ['api.1', 'nats', 'worker.1', 'worker.2', 'zookeeper'],
    'formation api=1 worker=2 plus both servers',
  )
  const api = pids.api[0]!
  t.match(l.lines.join('\n'), /ready: API http:\/\/127\.0\.0\.1:\d+/, 'prints the API URL')
  t.match(l.lines.join('\n'), /curl -s -X POST '.*\/jobs\?wait=\d+'.*"function":"echo"/, 'prints a curl example')

  const cluster = (await (await fetch(`${api}/cluster`)).json()) as { boss: { id: string } | null }
  t.ok(
    cluster.boss && ['worker-1', 'worker-2'].includes(cluster.boss.id),
    `a worker of this launcher is the boss (got ${JSON.stringify(cluster.boss)})`,
  )

  const payload = { hello: 'local cluster', n: 42 }
  const res = await fetch(`${api}/jobs?wait=60000`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ function: 'echo', payload }),
  })
  const job = (await res.json()) as { state: string; result?: unknown; worker?: string }
  t.equal(res.status, 200, `finished within the wait (${JSON.stringify(job)})`)
  t.equal(job.state, 'succeeded')
  t.same(job.result, payload, 'echo returns its payload')
  t.ok(
    job.worker && ['worker-1', 'worker-2'].includes(job.worker) && job.worker !== cluster.boss?.id,
    `ran on the worker that is not the boss (worker ${job.worker})`,
  )

  l.child.kill('SIGINT')
  const exit = await l.exitedWithin(60_000)
  t.same(exit, { code: 0, signal: null }, 'clean exit on SIGINT')
  t.match(l.lines.join('\n'), /got SIGINT/)
  t.same(survivors(pids), [], 'no process (group) it started is left: api, workers, ZooKeeper, NATS, watchdog')
  t.equal(api, `http://127.0.0.1:${l.ports.api}`, 'api.1 listens on BOSUN_API_PORT')
  for (const [name, port] of Object.entries(l.ports)) t.ok(await portFree(port), `${name} port ${port} released`)
})
