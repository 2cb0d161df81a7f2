/** Priority order on a single busy worker (concurrency 1): higher priority first, then submission order. */
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const zk = await startZooKeeper()
const nats = await startNats()
// Two worker processes: one becomes the boss, the other is the single worker, one job at a time.
const cluster = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('prio'),
  workers: 2,
  concurrency: 1,
  functionsDir: e2eFunctionsDir(),
})
t.teardown(async () => {
  await cluster.close()
  await nats.close()
  await zk.close()
})
await cluster.start()

t.test('jobs queued behind a busy worker run by priority, then submission order', async (t) => {
  const file = join(tmpdir(), `${uniqueName('prio')}.txt`)
  writeFileSync(file, '')
  const blocker = await cluster.post('/jobs', { function: 'start', payload: { file, ms: 1500 } })
  await waitFor(() => readFileSync(file, 'utf8').includes(blocker.body.id), { what: 'blocker started' })
  const specs = [
    { name: 'low-1', priority: 0 },
    { name: 'high-1', priority: 10 },
    { name: 'low-2', priority: 0 },
    { name: 'mid', priority: 5 },
    { name: 'high-2', priority: 10 },
  ]
  const ids = new Map<string, string>()
  for (const s of specs) {
    const r = await cluster.post('/jobs', { function: 'count', payload: { file, n: s.name }, priority: s.priority })
    ids.set(r.body.id, s.name)
  }
  await waitFor(() => readFileSync(file, 'utf8').split('\n').filter(Boolean).length === specs.length + 1, {
    timeoutMs: 20_000,
    what: 'all ran',
  })
  const order = readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .slice(1)
    .map((l) => ids.get(l.split(' ')[0]!))
  t.same(order, ['high-1', 'high-2', 'mid', 'low-1', 'low-2'])
})
