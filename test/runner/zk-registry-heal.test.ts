/**
 * ZkRegistry keeps its own znodes while its session lives: a registration (`services/<s>/<id>`) or
 * node announcement (`nodes/<id>`) deleted or overwritten by another client (no ACLs) is written
 * again within seconds, and other processes' caches see the entry again; unregister() on purpose is
 * never undone. Real ZooKeeper; the other client is a raw node-zookeeper-client.
 */
import t, { type Test } from 'tap'
import { Writable } from 'node:stream'
import zookeeper from 'node-zookeeper-client'
import { pino } from 'pino'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { raw, rawClient, startSession } from '../fixtures/zk-tools.js'
import { ZkRegistry, type ZkSession } from '../../runner/zk/index.js'
import { silentLogger } from '../../runner/logger.js'
import type { ServiceEntry } from '../../runner/contracts.js'

const zk = await startZooKeeper()
t.teardown(() => zk.close())
/** "Promptly": well under a session timeout, generous for a loaded machine. */
const HEAL_MS = 5000

interface Member {
  session: ZkSession
  registry: ZkRegistry
}

async function member(t: Test, cluster: string, id: string, logger = silentLogger()): Promise<Member> {
  const session = await startSession({ servers: zk.connect, cluster })
  const registry = new ZkRegistry({ session, nodeId: id, host: 'h', pid: 1, send: () => undefined, logger })
  t.teardown(async () => {
    await registry.close()
    await session.close()
  })
  return { session, registry }
}

async function admin(t: Test): Promise<zookeeper.Client> {
  const client = await rawClient(zk.connect)
  t.teardown(() => client.close())
  return client
}

/** Wait (at most HEAL_MS) until `check` holds. */
const healed = (check: () => boolean | Promise<boolean>, what: string) => waitFor(check, { timeoutMs: HEAL_MS, what })

const ids = (entries: Array<{ id: string }>) => entries.map((e) => e.id).sort()

/** The node at `path` exists, belongs to `m`'s session and holds its registration for `address`. */
async function ours(client: zookeeper.Client, m: Member, path: string, address: string): Promise<boolean> {
  const stat = await raw.exists(client, path)
  if (!stat || stat.ephemeralOwner.toString('hex') !== m.session.sessionId) return false
  const data = JSON.parse(String(await raw.getData(client, path))) as Partial<ServiceEntry>
  return data.address === address
}

t.test('registration and announcement deleted by another client come back; other caches see them again', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const o = await member(t, cluster, 'o')
  const op = await admin(t)
  await a.registry.register('svc', 'addr.a', { slots: 2 })
  await a.registry.announce('node.a')
  await waitFor(async () => ids(await o.registry.getCapable('svc')).join() === 'a', { what: 'o sees the registration' })
  await waitFor(async () => ids(await o.registry.getPeers()).join() === 'a', { what: 'o sees the node' })
  const svcPath = a.session.path('services', 'svc', 'a')
  const nodePath = a.session.path('nodes', 'a')
  for (let round = 1; round <= 3; round++) {
    await raw.remove(op, svcPath)
    await raw.remove(op, nodePath)
    const started = Date.now()
    await healed(() => ours(op, a, svcPath, 'addr.a'), `round ${round}: registration back`)
    await healed(() => ours(op, a, nodePath, 'node.a'), `round ${round}: announcement back`)
    t.pass(`round ${round}: both back after ${Date.now() - started} ms, owned by a's session`)
    await healed(async () => ids(await o.registry.getCapable('svc')).join() === 'a', `round ${round}: o sees a again`)
    await healed(async () => ids(await o.registry.getPeers()).join() === 'a', `round ${round}: o sees the node again`)
    t.match((await o.registry.getCapable('svc'))[0], { id: 'a', address: 'addr.a', meta: { slots: 2 } }, 'same entry')
  }
})

t.test('our data overwritten by another client is written back', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const o = await member(t, cluster, 'o')
  const op = await admin(t)
  await a.registry.register('svc', 'addr.a')
  const path = a.session.path('services', 'svc', 'a')
  await raw.setData(op, path, Buffer.from('{"v":1,"id":"a","address":"hijacked"}'))
  await waitFor(() => ours(op, a, path, 'addr.a'), { timeoutMs: HEAL_MS, what: 'our data back' })
  await healed(async () => (await o.registry.getCapable('svc'))[0]?.address === 'addr.a', 'o sees our data')
  await a.registry.updateMeta('svc', { slots: 9 })
  const slots = async () => (await o.registry.getCapable('svc'))[0]?.meta.slots
  await waitFor(async () => (await slots()) === 9, { what: 'updateMeta still works' })
  t.ok(await ours(op, a, path, 'addr.a'))
})

t.test('a registration replaced by another session is taken back in one multi (never missing)', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const op = await admin(t)
  const observer = await admin(t)
  const opSession = op.getSessionId().toString('hex')
  /**
   * Puts a foreign ephemeral at our path (delete ours, create theirs in one transaction) and arms an
   * exists watch on it from a third session. Resolves with what the path looked like right after the
   * watch fired, or 'late' when the registry had already taken the path back before the watch was
   * armed (then nothing can be concluded from this round and the caller tries again).
   */
  const replaceAndObserve = async (path: string): Promise<string> => {
    await new Promise<void>((resolve, reject) =>
      op
        .transaction()
        .remove(path, -1)
        .create(path, Buffer.from('{}'), zookeeper.CreateMode.EPHEMERAL)
        .commit((err) => (err ? reject(err) : resolve())),
    )
    return new Promise<string>((resolve) => {
      const timer = setTimeout(() => resolve('no watch event'), HEAL_MS)
      const after = (ev: zookeeper.Event) =>
        observer.exists(path, (err, stat) => {
          clearTimeout(timer)
          resolve(err ? `error ${String(err)}` : `${stat ? 'present' : 'missing'} after ${ev.getName()}`)
        })
      observer.exists(path, after, (err, stat) => {
        if (err || !stat || stat.ephemeralOwner.toString('hex') !== opSession) {
          clearTimeout(timer)
          resolve('late')
        }
      })
    })
  }
  let seen = 'late'
  for (let round = 1; round <= 10 && seen === 'late'; round++) {
    // A fresh registration each round: the registry takes a path back from another session at most
    // once per TAKE_BACK_WINDOW_MS (10 s, runner/zk/own-nodes.ts), so a second round on the same path
    // would wait out that window, longer than HEAL_MS.
    const service = `svc${round}`
    await a.registry.register(service, 'addr.a')
    const path = a.session.path('services', service, 'a')
    seen = await replaceAndObserve(path)
    await waitFor(() => ours(op, a, path, 'addr.a'), { timeoutMs: HEAL_MS, what: `round ${round}: ours again` })
  }
  t.equal(seen, 'present after NODE_DELETED', 'the take-back never left the path empty')
})

t.test('unregister() on purpose is not undone; a later deletion of another node still heals', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const o = await member(t, cluster, 'o')
  const op = await admin(t)
  await a.registry.register('svc', 'addr.a')
  await a.registry.register('other', 'addr.a')
  await waitFor(async () => ids(await o.registry.getCapable('svc')).join() === 'a', { what: 'o sees svc' })
  await a.registry.unregister('svc')
  await waitFor(async () => (await o.registry.getCapable('svc')).length === 0, { what: 'o sees svc gone' })
  // The unregister's own delete event was handled before this later one (watch events arrive in order):
  // once 'other' is healed, a resurrection of 'svc' would already have happened.
  const otherPath = a.session.path('services', 'other', 'a')
  await raw.remove(op, otherPath)
  await waitFor(() => ours(op, a, otherPath, 'addr.a'), { timeoutMs: HEAL_MS, what: 'other healed' })
  t.equal(await raw.exists(op, a.session.path('services', 'svc', 'a')), null, 'svc stays unregistered')
  t.same(await o.registry.getCapable('svc'), [], 'o still sees no svc')
  // Registering again works and heals again.
  await a.registry.register('svc', 'addr.a2')
  await raw.remove(op, a.session.path('services', 'svc', 'a'))
  await healed(() => ours(op, a, a.session.path('services', 'svc', 'a'), 'addr.a2'), 'svc healed after re-registering')
})

t.test('close() deletes our znodes and does not bring them back', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  // A second registry on the same session (the same connection: its watch events come in order).
  const a2 = new ZkRegistry({
    session: a.session,
    nodeId: 'a2',
    host: 'h',
    pid: 1,
    send: () => 0,
    logger: silentLogger(),
  })
  t.teardown(() => a2.close())
  const op = await admin(t)
  await a.registry.register('svc', 'addr.a')
  await a2.register('svc', 'addr.a2')
  await a.registry.close()
  t.equal(await raw.exists(op, a.session.path('services', 'svc', 'a')), null, 'deleted by close()')
  const path2 = a.session.path('services', 'svc', 'a2')
  await raw.remove(op, path2)
  await healed(() => ours(op, a, path2, 'addr.a2'), 'a2 healed (events after the close were handled)')
  t.equal(await raw.exists(op, a.session.path('services', 'svc', 'a')), null, 'a stays deleted')
})

t.test('two live processes with the same node id do not take the path from each other in a loop', async (t) => {
  const cluster = uniqueName('c')
  // Each member logs into its own list: a replacement is logged once per multi (delete + create) it sends.
  const linesOf = (lines: string[]) =>
    pino(
      { level: 'warn' },
      new Writable({
        write(chunk, _e, cb) {
          lines.push(String(chunk))
          cb()
        },
      }),
    )
  const xLines: string[] = []
  const yLines: string[] = []
  const x = await member(t, cluster, 'dup', linesOf(xLines))
  const y = await member(t, cluster, 'dup', linesOf(yLines))
  const observer = await admin(t)
  const path = x.session.path('services', 'svc', 'dup')
  await x.registry.register('svc', 'addr.x')
  // y's own register() may see x's take-back before it returns (its write loop reads the path again):
  // then it rejects with the contest error instead of resolving; both are the contest detected.
  const yRegistered = await y.registry.register('svc', 'addr.y').then(
    () => 'resolved',
    (err: Error) => err.message,
  )
  t.ok(
    yRegistered === 'resolved' || yRegistered.includes('another process with our node id'),
    `y's register: ${yRegistered}`,
  )
  if (yRegistered !== 'resolved') yLines.push(yRegistered)
  const all = () => [...xLines, ...yLines]
  const contested = () => all().some((l) => l.includes('another process with our node id'))
  await waitFor(contested, { what: 'the contest detected' })
  const replaced = (lines: string[]) => lines.filter((l) => l.includes('replacing a registration')).length
  // y took the path, x took it back once, then y refused (throttled): a handful of replacements, not a storm.
  t.ok(replaced(yLines) >= 1 && replaced(xLines) >= 1, 'both took the path once')
  const before = replaced(xLines) + replaced(yLines)
  t.ok(before <= 6, `${before} replacements before the contest was detected`)
  await new Promise((r) => setTimeout(r, 2000))
  const after = replaced(xLines) + replaced(yLines)
  t.equal(after, before, 'no further replacement in the 2 s after (the take-back window is 10 s)')
  const owner = (await raw.exists(observer, path))?.ephemeralOwner.toString('hex')
  t.ok(owner === x.session.sessionId || owner === y.session.sessionId, 'owned by one of them')
})
