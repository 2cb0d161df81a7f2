import t from 'tap'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { startSession, expireSession } from '../fixtures/zk-tools.js'
import { createLogger } from '../../runner/logger.js'

t.test('unknown code loop', async (t) => {
  const zk = await startZooKeeper()
  t.teardown(() => zk.close())
  for (let i = 0; i < 6; i++) {
    const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), logger: createLogger({ level: 'debug' }) })
    const states: string[] = []
    s.on('state', (x) => states.push(x))
    const manager = (s as any).handle.client.connectionManager
    const pending = s.getData(s.basePath)
    const xid = manager.pendingQueue[0]?.request.header.xid
    const reply = Buffer.alloc(20)
    reply.writeInt32BE(16, 0)
    reply.writeInt32BE(xid!, 4)
    reply.writeBigInt64BE(0n, 8)
    reply.writeInt32BE(-125, 16)
    manager.onSocketData(reply)
    await pending.catch((e: unknown) => e)
    await waitFor(async () => (await s.exists(s.basePath)) !== null)
    console.error('states', states)
    await s.close()
  }
  for (let i = 0; i < 4; i++) {
    const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), logger: createLogger({ level: 'debug' }) })
    const states: string[] = []
    s.on('state', (x) => states.push(x))
    await expireSession(zk.connect, s)
    await waitFor(() => states.includes('connected'), { what: 'new session' }).catch(e => console.error('FAIL', states))
    console.error('states2', states)
    await s.close()
  }
  t.pass()
})
