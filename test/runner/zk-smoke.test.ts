import t from 'tap'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { startSession } from '../fixtures/zk-tools.js'
import { ZkRegistry, ZkElection } from '../../runner/zk/index.js'
import { silentLogger } from '../../runner/logger.js'

t.test('smoke', async (t) => {
  const zk = await startZooKeeper()
  t.teardown(() => zk.close())
  const cluster = uniqueName('c')
  const a = await startSession({ servers: zk.connect, cluster })
  const b = await startSession({ servers: zk.connect, cluster })
  const ra = new ZkRegistry({ session: a, nodeId: 'a', host: 'h', pid: 1, send: () => true, logger: silentLogger() })
  const rb = new ZkRegistry({ session: b, nodeId: 'b', host: 'h', pid: 2, send: () => true, logger: silentLogger() })
  t.same(await rb.getCapable('svc'), [])
  await ra.register('svc', 'addr.a', { x: 1 })
  await waitFor(async () => (await rb.getCapable('svc')).length === 1)
  const before = b.requestCount
  t.equal((await rb.getCapable('svc'))[0]?.address, 'addr.a')
  t.equal(b.requestCount, before)
  const ea = new ZkElection({ session: a, nodeId: 'a', host: 'h', pid: 1, logger: silentLogger() })
  const eb = new ZkElection({ session: b, nodeId: 'b', host: 'h', pid: 2, logger: silentLogger() })
  const elected: string[] = []
  const la = await ea.registerCandidate('boss', 'addr.a', { onElected: (l) => { elected.push('a' + l.epoch) } })
  const lb = await eb.registerCandidate('boss', 'addr.b', { onElected: (l) => { elected.push('b' + l.epoch) } })
  t.equal(la?.id, 'a')
  t.equal(lb?.id, 'a')
  await ea.resign('boss')
  await waitFor(() => elected.includes('b2'))
  await waitFor(async () => (await ea.whereisGlobal('boss'))?.id === 'b')
  t.same(elected, ['a1', 'b2'])
  await ea.close(); await eb.close(); await ra.close(); await rb.close()
  await a.close(); await b.close()
})
