/**
 * `npm start` end to end: the launcher (dist/scripts/cluster.js, built by `npm test`) starts
 * ZooKeeper, NATS, the real api and 2 workers from the repository's Procfile; a job submitted with
 * ?wait runs on the worker that is not the boss; the cluster's events are printed as they happen,
 * and a kill -9 of the boss shows as highlighted lines and a leadership summary with the gap;
 * Ctrl-C (SIGINT) stops everything, servers included, and no process it started survives.
 */
import t from 'tap'
import { portFree } from '../../scripts/lib/servers.js'
import { waitFor } from '../helpers/wait.js'
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

  const cluster = (await (await fetch(`${api}/cluster`)).json()) as { boss: { id: string; epoch: number } | null }
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

  const bossEpoch = cluster.boss!.epoch
  await waitFor(() => l.lines.some((x) => /^events +\| >> \S+ +boss\.elected +epoch \d+/.test(x)), {
    timeoutMs: 30_000,
    what: `the first boss's election in the event lines: ${l.tail(8)}`,
  })
  process.kill(pids.processes[cluster.boss!.id.replace('-', '.')]!, 'SIGKILL')
  const change = new RegExp(
    `^events +\\| >> leadership epoch (\\d+): (worker-\\d) .* took over from ${cluster.boss!.id} \\(crashed\\); ` +
      'gap ([\\d,]+) ms',
  )
  const line = await waitFor(() => l.lines.find((x) => change.test(x)), {
    timeoutMs: 60_000,
    what: `the leadership change line after kill -9 of the boss: ${l.tail(8)}`,
  })
  const [, epoch, holder, gap] = change.exec(line)!
  t.ok(Number(epoch) > bossEpoch, `a newer epoch (${epoch} > ${bossEpoch})`)
  t.not(holder, cluster.boss!.id, 'held by the survivor')
  const gapMs = Number(gap!.replaceAll(',', ''))
  t.ok(gapMs > 1000 && gapMs < 30_000, `the gap (${gapMs} ms) is about the 3 s session timeout`)
  t.ok(
    l.lines.some((x) => new RegExp(`^events +\\| >> \\S+ +boss\\.elected +epoch ${epoch} `).test(x)),
    'the election itself is a highlighted event line',
  )

  l.child.kill('SIGINT')
  const exit = await l.exitedWithin(60_000)
  t.same(exit, { code: 0, signal: null }, 'clean exit on SIGINT')
  t.match(l.lines.join('\n'), /got SIGINT/)
  t.same(survivors(pids), [], 'no process (group) it started is left: api, workers, ZooKeeper, NATS, watchdog')
  t.equal(api, `http://127.0.0.1:${l.ports.api}`, 'api.1 listens on BOSUN_API_PORT')
  for (const [name, port] of Object.entries(l.ports)) t.ok(await portFree(port), `${name} port ${port} released`)
})
