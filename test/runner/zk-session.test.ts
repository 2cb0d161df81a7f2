/**
 * ZkSession against a real ZooKeeper: chroot/base path, ACLs, the node-zookeeper-client hazards of
 * README "Design notes" (unknown error codes, requests that never call back, dead client after expiry,
 * close() while disconnected, blind create retries) and silent partitions.
 */
import t from 'tap'
import zookeeper from 'node-zookeeper-client'
import { freePort, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { expireSession, freeze, raw, rawClient, startSession } from '../fixtures/zk-tools.js'
import { ZkSession, ZK_CODES, createClientException, isClientPatched, zkCodeOf } from '../../runner/zk/index.js'
import { errors, isBosunError } from '../../runner/errors.js'
import { silentLogger } from '../../runner/logger.js'
import type { ConnectionState } from '../../runner/contracts.js'

function recordStates(s: ZkSession): ConnectionState[] {
  const states: ConnectionState[] = []
  s.on('state', (st: ConnectionState) => states.push(st))
  return states
}

const zk = await startZooKeeper()
t.teardown(() => zk.close())

t.test('connects under the chroot, creates the base path, reports a hex session id', async (t) => {
  const cluster = uniqueName('c')
  const s = await startSession({ servers: zk.connect, chroot: '/bosun-chroot/deep', cluster })
  t.teardown(() => s.close())
  t.equal(s.basePath, `/bosun-chroot/deep/${cluster}`)
  t.equal(s.path('services', 'x'), `/bosun-chroot/deep/${cluster}/services/x`)
  t.match(s.sessionId, /^[0-9a-f]{16}$/)
  t.not(s.sessionId, '0000000000000000')
  t.ok(await s.exists(s.basePath), 'base path exists')
  const stat = await s.exists(s.basePath)
  t.equal(typeof stat?.czxid, 'bigint', 'czxid converted from an 8-byte Buffer')
  const eph = await s.create(s.path('e'), 'x', 'ephemeral')
  t.equal((await s.exists(eph))?.ephemeralOwner, s.sessionId, 'ephemeralOwner converted to the hex session id')
  await t.rejects(s.start(), { code: errors.ALREADY_STARTED.code })
})

t.test('start() rejects with a clear error when no server answers', async (t) => {
  const port = await freePort()
  const s = new ZkSession({
    servers: `127.0.0.1:${port}`,
    cluster: 'x',
    sessionTimeoutMs: 1000,
    connectTimeoutMs: 800,
    logger: silentLogger(),
  })
  const err = await s.start().catch((e: unknown) => e)
  t.ok(isBosunError(err, errors.ZK_NOT_CONNECTED), 'ZK_NOT_CONNECTED')
  t.match((err as Error).message, `127.0.0.1:${port}`)
  await s.close()
})

t.test('unknown ZooKeeper error codes do not crash the process', async (t) => {
  t.ok(isClientPatched())
  const Exception = zookeeper.Exception as unknown as new (...a: unknown[]) => Error
  for (const code of [-118, -125, -127, -999]) {
    const e = createClientException(code, '/p')
    t.equal(e.getCode(), code, `code ${code} kept`)
    t.ok(e instanceof Exception, 'an ordinary client Exception')
  }
  t.equal(createClientException(-125).name, 'QUOTA_EXCEEDED')
  t.equal(createClientException(-999).name, 'UNKNOWN_ERROR')
  t.equal(createClientException(ZK_CODES.NO_NODE).name, 'NO_NODE', 'known codes unchanged')

  // The real path: a reply carrying -125 fed to the connection's socket data handler.
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c') })
  t.teardown(() => s.close())
  const states = recordStates(s)
  const manager = (
    s as unknown as {
      handle: {
        client: {
          connectionManager: {
            pendingQueue: Array<{ request: { header: { xid: number } } }>
            onSocketData(b: Buffer): void
          }
        }
      }
    }
  ).handle.client.connectionManager
  const pending = s.getData(s.basePath)
  const xid = manager.pendingQueue[0]?.request.header.xid
  t.type(xid, 'number', 'the request is on the wire')
  const reply = Buffer.alloc(20)
  reply.writeInt32BE(16, 0)
  reply.writeInt32BE(xid!, 4)
  reply.writeBigInt64BE(0n, 8)
  reply.writeInt32BE(-125, 16)
  manager.onSocketData(reply)
  const err = await pending.catch((e: unknown) => e)
  t.equal(zkCodeOf(err), -125, 'the caller gets a ZK error with the unknown code')
  // The genuine answer then arrives for an empty queue: the client drops the connection and reconnects.
  await waitFor(async () => (await s.exists(s.basePath)) !== null, { what: 'session usable again' })
  t.notOk(states.includes('lost'), `same session (${states.join(',')})`)
})

t.test(
  'a call times out on a frozen server; the probe detects the silent partition; a new session follows',
  async (t) => {
    const s = await startSession({
      servers: zk.connect,
      cluster: uniqueName('c'),
      sessionTimeoutMs: 2000,
      requestTimeoutMs: 500,
    })
    t.teardown(() => s.close())
    const states = recordStates(s)
    const firstId = s.sessionId
    await freeze(zk.server)
    const paused = Date.now()
    t.teardown(() => zk.server.resume())
    const started = Date.now()
    const err = await s.getData(s.basePath).catch((e: unknown) => e)
    t.ok(isBosunError(err, errors.ZK_TIMEOUT), `ZK_TIMEOUT, not a hang (${String(err)})`)
    t.ok(Date.now() - started < 1500, `answered in ${Date.now() - started} ms`)
    await waitFor(() => states.includes('suspended'), { what: 'suspended' })
    t.ok(Date.now() - paused < 2000, `suspended ${Date.now() - paused} ms after the freeze, within the session timeout`)
    t.notOk(s.isConfirmed(), 'not confirmed while suspended')
    await waitFor(() => states.includes('lost'), { what: 'lost' })
    t.ok(
      states.indexOf('suspended') < states.indexOf('lost'),
      'suspended first, lost once unconfirmed for a whole session timeout',
    )
    const waitTimeout = s.exists('/').catch((e: unknown) => e)
    t.ok(isBosunError(await waitTimeout, errors.ZK_TIMEOUT), 'calls while lost time out too')
    zk.server.resume()
    await waitFor(() => states.includes('connected'), { what: 'new session' })
    t.not(s.sessionId, firstId, 'a new session')
    t.ok(await s.exists(s.basePath))
  },
)

t.test('a call while the server is down times out instead of waiting in the client queue', async (t) => {
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), sessionTimeoutMs: 10_000 })
  t.teardown(() => s.close())
  await zk.server.kill()
  t.teardown(() => (zk.server.running ? undefined : zk.server.start()))
  await waitFor(() => s.state === 'suspended', { what: 'suspended' })
  const started = Date.now()
  const err = await s.create(s.path('never'), 'x', 'persistent', { timeoutMs: 300 }).catch((e: unknown) => e)
  t.ok(isBosunError(err, errors.ZK_TIMEOUT), 'ZK_TIMEOUT')
  t.match((err as { details?: unknown }).details, { sent: false }, 'never handed to the client while disconnected')
  t.ok(Date.now() - started < 2000, `answered in ${Date.now() - started} ms`)
  await zk.server.start()
  await waitFor(() => s.state === 'connected', { timeoutMs: 30_000, what: 'reconnected' })
  t.equal(await s.exists(s.path('never')), null, 'the timed-out create never ran later')
})

t.test('an expired client is replaced by a new one (the process never restarts)', async (t) => {
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c') })
  t.teardown(() => s.close())
  const states = recordStates(s)
  const firstId = s.sessionId
  const gen = s.generation
  await expireSession(zk.connect, s)
  await waitFor(() => states.includes('connected'), { what: 'new session' })
  t.same(
    states.filter((x) => x === 'lost' || x === 'connected'),
    ['lost', 'connected'],
  )
  t.not(s.sessionId, firstId)
  t.ok(s.generation > gen)
  t.equal(s.stats.sessions, 2)
  t.ok(await s.create(s.path('after'), 'ok'), 'usable')
  await t.rejects(
    s.getData(s.basePath, undefined, { generation: gen }),
    { code: errors.ZK_SESSION_LOST.code },
    'calls pinned to the old session refuse to run',
  )
})

t.test('close() deletes our ephemerals at once, and is idempotent', async (t) => {
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), sessionTimeoutMs: 10_000 })
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  const p = await s.create(s.path('eph'), 'x', 'ephemeral')
  const seq = await s.createProtected(s.path('dir'), 'y')
  const first = s.close()
  t.equal(s.close(), first, 'same promise')
  await first
  t.equal(await raw.exists(observer, p), null, 'ephemeral gone right after close (not after the 10 s session timeout)')
  t.equal(await raw.exists(observer, seq), null)
  t.equal(s.state, 'closed')
  await t.rejects(s.exists('/'), { code: errors.CLOSED.code })
})

t.test('close() while disconnected waits for the reconnect and deletes our ephemerals', async (t) => {
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), sessionTimeoutMs: 10_000 })
  const p = await s.create(s.path('eph'), 'x', 'ephemeral')
  await zk.server.kill()
  const closing = s.close()
  const restart = (async () => {
    // Keep the server down a moment so close() really finds the client disconnected.
    await waitFor(() => s.state === 'suspended' || s.state === 'closing', { what: 'client noticed' })
    await zk.server.start()
  })()
  const started = Date.now()
  await closing
  await restart
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  t.equal(
    await raw.exists(observer, p),
    null,
    `ephemeral deleted by close() (${Date.now() - started} ms), before any expiry`,
  )
})

t.test('close() whose removes fail while the client believes it is connected: waits, removes again', async (t) => {
  // The race the previous test can hit: close() starts before the client noticed the server is
  // gone. A paused server makes it certain: the removes time out, then the server dies and restarts.
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), sessionTimeoutMs: 10_000 })
  const p = await s.create(s.path('eph'), 'x', 'ephemeral')
  await zk.server.pause()
  const closing = s.close()
  await new Promise((r) => setTimeout(r, 2500)) // past the removes' 2 s timeout
  await zk.server.kill()
  await zk.server.start()
  await closing
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  t.equal(await raw.exists(observer, p), null, 'ephemeral deleted by close(), before its session expired')
})

t.test('protected create: after a connection loss mid-create it finds its node, never creates twice', async (t) => {
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c') })
  t.teardown(() => s.close())
  const dir = s.path('elections', 'p')
  await s.mkdirp(dir)
  const rounds = 8
  const created: string[] = []
  for (let i = 0; i < rounds; i++) {
    const pending = s.createProtected(dir, 'data')
    s.dropConnection() // the create is on the wire; its answer is lost
    created.push(await pending)
  }
  const { children } = await s.getChildren(dir)
  t.equal(children.length, rounds, 'exactly one node per create: no orphan sequential nodes')
  t.same(children.map((c) => `${dir}/${c}`).sort(), [...created].sort())
  t.equal(new Set(children.map((c) => c.split('-')[0])).size, rounds, 'one GUID each')
  t.ok(s.stats.protectedSearches >= rounds, 'every round searched for its GUID instead of creating again')
  t.ok(s.stats.protectedFound >= 1, `found the node the lost create made (${s.stats.protectedFound} of ${rounds})`)
})

t.test('ACL: with credentials, bosun znodes can be read but not changed or deleted by others', async (t) => {
  const auth = 'bosun:s3cret'
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), auth })
  t.teardown(() => s.close())
  const node = await s.create(s.path('data'), 'v1')
  const eph = await s.create(s.path('eph'), 'v1', 'ephemeral')
  const anon = await rawClient(zk.connect)
  t.teardown(() => anon.close())
  t.equal((await raw.getData(anon, node)).toString(), 'v1', 'world can read')
  const code = (e: unknown) => (e as { code?: number }).code
  t.equal(
    code(await raw.setData(anon, node, Buffer.from('x')).catch((e: unknown) => e)),
    ZK_CODES.NO_AUTH,
    'cannot set',
  )
  t.equal(code(await raw.remove(anon, eph).catch((e: unknown) => e)), ZK_CODES.NO_AUTH, 'cannot delete')
  t.equal(
    code(await raw.create(anon, s.path('intruder')).catch((e: unknown) => e)),
    ZK_CODES.NO_AUTH,
    'cannot create below',
  )
  const friend = await rawClient(zk.connect, { auth })
  t.teardown(() => friend.close())
  await raw.setData(friend, node, Buffer.from('v2'))
  t.equal((await s.getData(node)).data.toString(), 'v2', 'the same credentials can write')

  const open = await startSession({ servers: zk.connect, cluster: uniqueName('c') })
  t.teardown(() => open.close())
  const openNode = await open.create(open.path('o'), 'x')
  await raw.setData(anon, openNode, Buffer.from('y'))
  t.pass('without credentials configured, nodes are OPEN')
})

t.test('a wiped server: the client gives up its session and starts a new one', async (t) => {
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), sessionTimeoutMs: 1000 })
  t.teardown(() => s.close())
  const states = recordStates(s)
  const firstId = s.sessionId
  await s.create(s.path('some', 'thing'), 'x').catch(() => s.mkdirp(s.path('some', 'thing')))
  await zk.server.wipe()
  await zk.server.start()
  await waitFor(() => states.includes('lost') && states.lastIndexOf('connected') > states.indexOf('lost'), {
    timeoutMs: 30_000,
    what: 'new session after wipe',
  })
  t.not(s.sessionId, firstId)
  t.ok(await s.exists(s.basePath), 'base path created again on the empty server')
})

t.test('the liveness probe runs while idle and is not counted as a request', async (t) => {
  const s = await startSession({ servers: zk.connect, cluster: uniqueName('c'), sessionTimeoutMs: 1200 })
  t.teardown(() => s.close())
  const before = s.requestCount
  const probes = s.stats.probes
  const started = Date.now()
  await waitFor(() => s.stats.probes >= probes + 3, { what: 'three probes' })
  t.ok(
    Date.now() - started < 3 * 1200,
    `three probes in ${Date.now() - started} ms: more often than once per session timeout`,
  )
  t.equal(s.requestCount, before, 'no counted requests while idle')
  t.ok(s.isConfirmed())
})
