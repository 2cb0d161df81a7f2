/**
 * ZkRegistry against a real ZooKeeper: the seed's defects (README "Design notes"), the watch-kept cache
 * (no request on a hit), re-registration after session loss and server restart, node discovery.
 */
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import zookeeper from 'node-zookeeper-client'
import { pino } from 'pino'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { expireSession, raw, rawClient, spawnFixture, startSession } from '../fixtures/zk-tools.js'
import { ZkRegistry, type ZkRegistryOptions, type ZkSession } from '../../runner/zk/index.js'
import { errors } from '../../runner/errors.js'
import { silentLogger } from '../../runner/logger.js'
import type { ServiceEntry } from '../../runner/contracts.js'

const zk = await startZooKeeper()
t.teardown(() => zk.close())
const fixture = new URL('../fixtures/zk-registrant.ts', import.meta.url).pathname

interface Member {
  session: ZkSession
  registry: ZkRegistry
  sent: Array<[string, string, unknown]>
}

/** A session + registry for node `id` in `cluster`, closed at the end of the test. */
async function member(
  t: Test,
  cluster: string,
  id: string,
  extra: Partial<ZkRegistryOptions> & { sessionTimeoutMs?: number } = {},
): Promise<Member> {
  const session = await startSession({
    servers: zk.connect,
    cluster,
    ...(extra.sessionTimeoutMs ? { sessionTimeoutMs: extra.sessionTimeoutMs } : {}),
  })
  const sent: Member['sent'] = []
  const registry = new ZkRegistry({
    session,
    nodeId: id,
    host: 'h',
    pid: 1,
    send: (a, ty, b) => sent.push([a, ty, b]),
    logger: silentLogger(),
    ...extra,
  })
  t.teardown(async () => {
    await registry.close()
    await session.close()
  })
  return { session, registry, sent }
}

/** getCapable answered from the cache: asserts it made no request. */
async function cached(t: Test, m: Member, service: string): Promise<ServiceEntry[]> {
  const before = m.session.requestCount
  const entries = await m.registry.getCapable(service)
  t.equal(m.session.requestCount, before, 'served from the cache (0 requests)')
  return entries
}

const ids = (entries: ServiceEntry[]) => entries.map((e) => e.id).sort()

t.test('a service that does not exist yet is watched and refreshed when it appears', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  const changes: string[][] = []
  b.registry.on('change', (service, entries) => service === 'later' && changes.push(ids(entries)))
  t.same(await b.registry.getCapable('later'), [], 'nothing yet')
  await a.registry.register('later', 'addr.a')
  await waitFor(() => changes.some((c) => c.includes('a')), { what: 'change event for the new service' })
  t.same(ids(await cached(t, b, 'later')), ['a'])
})

t.test('a child deleted between getChildren and getData does not empty the lookup', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  const c = await member(t, cluster, 'c')
  for (const m of [a, b, c])
    await m.registry.register('svc', `addr.${m.registry === a.registry ? 'a' : m.registry === b.registry ? 'b' : 'c'}`)
  let deleted = false
  const o = await member(t, cluster, 'o', {
    hooks: {
      async afterGetChildren(dir, children) {
        if (deleted || !dir.endsWith('/services/svc') || children.length !== 3) return
        deleted = true
        await c.registry.unregister('svc') // gone after getChildren listed it, before getData reads it
      },
    },
  })
  const first = await o.registry.getCapable('svc')
  t.ok(deleted, 'the child was deleted mid-read')
  t.same(ids(first), ['a', 'b'], 'the other children are still answered')
  t.same(ids(await cached(t, o, 'svc')), ['a', 'b'])
})

t.test('register, unregister and updateMeta on another session reach the cache; hits make no request', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const o = await member(t, cluster, 'o')
  t.same(await o.registry.getCapable('svc'), [])
  for (let i = 0; i < 20; i++) await cached(t, o, 'svc')
  await a.registry.register('svc', 'addr.a', { slots: 1 })
  await waitFor(async () => (await o.registry.getCapable('svc')).length === 1, { what: 'registration seen' })
  const [entry] = await cached(t, o, 'svc')
  t.match(entry, { id: 'a', address: 'addr.a', host: 'h', pid: 1, meta: { slots: 1 } })
  t.match(entry?.registeredAt, /^\d{4}-\d\d-\d\dT/)
  await a.registry.updateMeta('svc', { slots: 4 })
  await waitFor(async () => (await o.registry.getCapable('svc'))[0]?.meta.slots === 4, { what: 'meta update seen' })
  await a.registry.unregister('svc')
  await waitFor(async () => (await o.registry.getCapable('svc')).length === 0, { what: 'unregister seen' })
  t.same(await cached(t, o, 'svc'), [])
  await t.rejects(a.registry.updateMeta('svc', {}), { code: errors.VALIDATION.code }, 'updateMeta needs a registration')
})

t.test('the death of a registered process reaches the cache', async (t) => {
  const cluster = uniqueName('c')
  const o = await member(t, cluster, 'o')
  const proc = spawnFixture(fixture, {
    ZK_SERVERS: zk.connect,
    ZK_CLUSTER: cluster,
    NODE_ID: 'p1',
    SERVICE: 'svc',
    ZK_SESSION_MS: '1000',
  })
  t.teardown(() => void proc.child.kill('SIGKILL'))
  await waitFor(() => proc.events.some((e) => e.ev === 'ready'), { timeoutMs: 60_000, what: 'registrant ready' })
  await waitFor(async () => ids(await o.registry.getCapable('svc')).includes('p1'), { what: 'registration seen' })
  t.same(ids(await o.registry.getPeers()), ['p1'], 'node discovery sees it')
  proc.child.kill('SIGKILL')
  await proc.exited
  await waitFor(async () => (await o.registry.getCapable('svc')).length === 0, { what: 'dead process dropped' })
  await waitFor(async () => (await o.registry.getPeers()).length === 0, { what: 'dead node dropped' })
  t.same(await cached(t, o, 'svc'), [])
})

t.test('after session expiry everything is registered again and caches are rebuilt', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  await a.registry.register('svc', 'addr.a', { n: 1 })
  await a.registry.announce('addr.a')
  t.same(ids(await a.registry.getCapable('svc')), ['a'])
  const oldSession = a.session.sessionId
  await expireSession(zk.connect, a.session)
  await waitFor(() => a.session.state === 'connected' && a.session.sessionId !== oldSession, { what: 'new session' })
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  await waitFor(async () => (await raw.exists(observer, a.session.path('services', 'svc', 'a'))) !== null, {
    what: 're-registered',
  })
  const stat = await a.session.exists(a.session.path('services', 'svc', 'a'))
  t.equal(stat?.ephemeralOwner, a.session.sessionId, 'owned by the new session')
  t.ok(await raw.exists(observer, a.session.path('nodes', 'a')), 're-announced')
  await b.registry.register('svc', 'addr.b')
  await waitFor(async () => ids(await a.registry.getCapable('svc')).join() === 'a,b', {
    what: 'watch re-armed on the new session',
  })
})

t.test('a registration left by another session is replaced in one step: a watcher never sees it missing', async (t) => {
  // After a new session, a live process finds its old session's ephemerals still there. Deleting
  // them and creating anew in two steps opens a gap in which a boss would think the process dead.
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const squatter = await rawClient(zk.connect)
  const observer = await rawClient(zk.connect)
  t.teardown(() => {
    squatter.close()
    observer.close()
  })
  const path = a.session.path('services', 'svc', 'a')
  await raw.mkdirp(squatter, a.session.path('services', 'svc'))
  const seen: string[] = []
  for (let round = 0; round < 5; round++) {
    await raw.create(squatter, path, Buffer.from('{}'), zookeeper.CreateMode.EPHEMERAL)
    const afterEvent = new Promise<string>((resolve) => {
      observer.exists(
        path,
        (ev) =>
          observer.exists(path, (err, stat) =>
            resolve(
              err ? `error ${String(err)}` : stat ? `present after ${ev.getName()}` : `missing after ${ev.getName()}`,
            ),
          ),
        () => undefined,
      )
    })
    await a.registry.register('svc', 'addr.a')
    seen.push(await afterEvent)
    const stat = await a.session.exists(path)
    t.equal(stat?.ephemeralOwner, a.session.sessionId, `round ${round}: the registration is ours now`)
    await a.registry.unregister('svc')
  }
  t.same(
    seen,
    Array(5).fill('present after NODE_DELETED'),
    'read right after the delete event, the registration is always there',
  )
})

t.test('invalid data in a node is ignored with a warning', async (t) => {
  const cluster = uniqueName('c')
  const lines: string[] = []
  const logger = pino(
    { level: 'warn' },
    new Writable({
      write(chunk, _e, cb) {
        lines.push(String(chunk))
        cb()
      },
    }),
  )
  const a = await member(t, cluster, 'a')
  const o = await member(t, cluster, 'o', { logger })
  await a.registry.register('svc', 'addr.a')
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  const dir = a.session.path('services', 'svc')
  await raw.create(observer, `${dir}/garbage`, Buffer.from('{not json'))
  await raw.create(observer, `${dir}/empty`)
  await raw.create(
    observer,
    `${dir}/wrongid`,
    Buffer.from(JSON.stringify({ v: 1, id: 'other', address: 'x', host: 'h', pid: 1, meta: {}, registeredAt: 'now' })),
  )
  await raw.create(observer, `${dir}/v2`, Buffer.from(JSON.stringify({ v: 2, id: 'v2' })))
  t.same(ids(await o.registry.getCapable('svc')), ['a'], 'only the valid registration')
  t.equal(lines.filter((l) => l.includes('ignoring invalid data')).length, 4, 'one warning per invalid node')
})

t.test('nsendCapable and nsendPeers address every live registration', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  const c = await member(t, cluster, 'c')
  await a.registry.announce('addr.a')
  await b.registry.announce('addr.b')
  await a.registry.register('worker', 'worker.a')
  await b.registry.register('worker', 'worker.b')
  await c.registry.register('worker', 'worker.c') // registered, but node c never announced itself
  await waitFor(
    async () => (await a.registry.getCapable('worker')).length === 3 && (await a.registry.getPeers()).length === 2,
    { what: 'all seen' },
  )
  t.equal(await a.registry.nsendCapable('worker', 'job', { n: 1 }), 3)
  t.same(a.sent.map(([addr]) => addr).sort(), ['worker.a', 'worker.b', 'worker.c'])
  a.sent.length = 0
  t.equal(await a.registry.nsendPeers('worker', 'ping', {}), 2)
  t.same(a.sent.map(([addr, type]) => `${addr}:${type}`).sort(), ['worker.a:ping', 'worker.b:ping'])
  t.same(ids(await a.registry.getPeers()), ['a', 'b'])
})

t.test('bad input is rejected without side effects', async (t) => {
  const a = await member(t, uniqueName('c'), 'a')
  for (const name of ['', 'a/b', '.', '..', 'x\u0000y']) {
    await t.rejects(
      a.registry.register(name, 'addr'),
      { code: errors.VALIDATION.code },
      `service ${JSON.stringify(name)}`,
    )
  }
  await t.rejects(a.registry.register('svc', ''), { code: errors.VALIDATION.code })
  await t.rejects(a.registry.register('svc', 'addr', [] as never), { code: errors.VALIDATION.code })
  const circular: Record<string, unknown> = {}
  circular.self = circular
  await t.rejects(a.registry.register('svc', 'addr', circular), { code: errors.VALIDATION.code })
  t.same(await a.registry.getCapable('svc'), [])
  await a.registry.close()
  await t.rejects(a.registry.getCapable('svc'), { code: errors.CLOSED.code })
})

t.test('a ZooKeeper server restart: registrations kept or restored, watches re-armed', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  await a.registry.register('svc', 'addr.a')
  await waitFor(async () => ids(await b.registry.getCapable('svc')).join() === 'a', { what: 'seen' })
  await zk.server.restart()
  await waitFor(() => a.session.state === 'connected' && b.session.state === 'connected', {
    timeoutMs: 30_000,
    what: 'both connected again',
  })
  const reg = await waitFor(async () => a.session.exists(a.session.path('services', 'svc', 'a')), {
    what: 'registration present',
  })
  t.equal(reg.ephemeralOwner, a.session.sessionId, "a's registration is owned by a's live session (kept or restored)")
  t.same(ids(await b.registry.getCapable('svc')), ['a'], "b's cache still lists a after the restart")
  const c = await member(t, cluster, 'c')
  await c.registry.register('svc', 'addr.c')
  const seen = await waitFor(
    async () => {
      const now = ids(await b.registry.getCapable('svc'))
      return now.join() === 'a,c' ? now : undefined
    },
    { what: 'watch works after the restart' },
  )
  t.same(seen, ['a', 'c'], "b's watch fired for a registration made after the restart")
  await c.registry.unregister('svc')
  const gone = await waitFor(
    async () => {
      const now = ids(await b.registry.getCapable('svc'))
      return now.join() === 'a' ? now : undefined
    },
    { what: 'the unregistration seen' },
  )
  t.same(gone, ['a'], 'and again for its removal (the watch was re-armed after firing)')
})
