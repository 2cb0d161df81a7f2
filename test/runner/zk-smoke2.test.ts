import t from 'tap'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { spawnFixture } from '../fixtures/zk-tools.js'
t.test('fixture', async (t) => {
  const zk = await startZooKeeper()
  t.teardown(() => zk.close())
  const f = spawnFixture(new URL('../fixtures/zk-candidate.ts', import.meta.url).pathname, { ZK_SERVERS: zk.connect, ZK_CLUSTER: uniqueName('c'), ZK_ELECTION: 'boss', NODE_ID: 'n1', ZK_SESSION_MS: '1000' })
  const t0 = Date.now()
  await waitFor(() => f.events.some((e) => e.ev === 'act'), { timeoutMs: 30000 })
  console.error('startup ms', Date.now() - t0)
  f.send('close')
  await f.exited
  t.ok(f.events.some((e) => e.ev === 'closed'))
})
