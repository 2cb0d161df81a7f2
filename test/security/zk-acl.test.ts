/**
 * ZooKeeper ACLs with ZK_AUTH=user:pass on a real cluster: every znode bosun creates (base path,
 * services, nodes, elections, epochs — persistent and ephemeral) is [digest ALL for bosun, world
 * READ]. A client without credentials, or with wrong ones, can read them but cannot setData,
 * delete, create children or change the ACL: each attempt answers NO_AUTH and changes nothing.
 * The cluster keeps working throughout.
 */
import { createHash } from 'node:crypto'
import zookeeper from 'node-zookeeper-client'
import t from 'tap'
import { TestCluster } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { deadProcesses, healthProblem, SESSION_TIMEOUT_MS, startCluster, zk, zkRaw } from '../hostile/helpers.js'

const AUTH = 'bosun:s3cret-zk'
const zkServer = await startZooKeeper()
const nats = await startNats()
const name = uniqueName('acl')
const cluster = new TestCluster({
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  zk: zkServer,
  nats,
  cluster: name,
  workers: 3,
  env: { ZK_AUTH: AUTH },
})
const clients: zookeeper.Client[] = []
t.teardown(async () => {
  clients.forEach((c) => zk.close(c))
  await cluster.close()
  await nats.close()
  await zkServer.close()
})
await startCluster(cluster)
const anonymous = await zkRaw(zkServer.connect)
const wrong = await zkRaw(zkServer.connect, 'bosun:not-the-password')
const owner = await zkRaw(zkServer.connect, AUTH)
clients.push(anonymous, wrong, owner)

/** Every znode below (and including) `path`, depth first. */
async function tree(c: zookeeper.Client, path: string): Promise<string[]> {
  const out = [path]
  for (const child of await zk.children(c, path)) out.push(...(await tree(c, `${path}/${child}`)))
  return out
}

const base = `/${name}`
const nodes = await tree(anonymous, base)
const snapshot = new Map<string, string>()
for (const p of nodes) snapshot.set(p, (await zk.data(anonymous, p)).toString('base64'))

t.test('bosun created every kind of znode the test attacks', async (t) => {
  for (const kind of ['services/worker/', 'nodes/', 'elections/boss/', 'epochs/boss']) {
    t.ok(
      nodes.some((p) => p.startsWith(`${base}/${kind}`)),
      `a znode under ${kind}`,
    )
  }
  t.ok(nodes.length >= 10, `${nodes.length} znodes`)
})

t.test('every bosun znode carries [digest ALL for the ZK_AUTH user, world READ]', async (t) => {
  const digest = `bosun:${createHash('sha1').update(AUTH).digest('base64')}`
  const bad: string[] = []
  for (const p of nodes) {
    const acls = await zk.acl(anonymous, p)
    // ZooKeeper 3.8 masks the digest for readers without READ_ACL rights ('user:x'); the client's
    // objects carry `permission` at run time (the typings say `perms`).
    const desc = acls
      .map((a) => {
        const permission = (a as unknown as { permission?: number }).permission ?? a.perms
        return `${a.id.scheme}:${a.id.id.replace(digest, 'bosun:x')}=${permission}`
      })
      .sort()
    const want = [`digest:bosun:x=${zookeeper.Permission.ALL}`, `world:anyone=${zookeeper.Permission.READ}`].sort()
    if (JSON.stringify(desc) !== JSON.stringify(want)) bad.push(`${p}: ${desc.join(', ')}`)
  }
  t.same(bad, [], 'all znodes have the restrictive ACL')
})

t.test('a client without credentials (or with wrong ones) can read but not change anything', async (t) => {
  const unexpected: string[] = []
  for (const [who, c] of [
    ['anonymous', anonymous],
    ['wrong password', wrong],
  ] as const) {
    for (const p of nodes) {
      try {
        await zk.data(c, p)
      } catch (err) {
        unexpected.push(`${who} getData ${p}: ${(err as Error).message}`)
      }
      const attempts: [string, Promise<string>][] = [
        ['setData', zk.setData(c, p, Buffer.from('pwned'))],
        ['create child', zk.create(c, `${p}/intruder`, Buffer.from('x'))],
        ['create ephemeral child', zk.create(c, `${p}/intruder-e`, Buffer.from('x'), zookeeper.CreateMode.EPHEMERAL)],
        ['setACL', zk.setACL(c, p, [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('world', 'anyone'))])],
        // Deleting needs DELETE on the parent; bosun's base path sits under the open '/', but it is
        // never empty, so ZooKeeper refuses with NOT_EMPTY.
        ['delete', zk.remove(c, p)],
      ]
      for (const [op, attempt] of attempts) {
        const outcome = await attempt
        const allowed = p === base && op === 'delete' ? ['NO_AUTH', 'NOT_EMPTY'] : ['NO_AUTH']
        if (!allowed.includes(outcome)) unexpected.push(`${who} ${op} ${p} → ${outcome}`)
      }
    }
  }
  t.same(unexpected, [], 'every write attempt answered NO_AUTH')
  // Nothing changed: the same znodes (ephemerals of live processes included) with the same data.
  for (const p of nodes) {
    const stat = await zk.stat(anonymous, p)
    if (!stat) {
      t.fail(`${p} disappeared`)
      continue
    }
    if (!p.includes('/elections/') && !p.endsWith('/epochs/boss'))
      t.equal((await zk.data(anonymous, p)).toString('base64'), snapshot.get(p), `${p} unchanged`)
  }
  t.notOk(
    (await tree(anonymous, base)).some((p) => p.includes('intruder')),
    'no intruder znode exists',
  )
})

t.test('the same writes succeed with the right credentials (the test can tell the difference)', async (t) => {
  const probe = `${base}/services/acl-probe`
  t.equal(await zk.create(owner, probe, Buffer.from('x')), 'OK', 'create')
  t.equal(await zk.setData(owner, probe, Buffer.from('y')), 'OK', 'setData')
  t.equal(await zk.remove(owner, probe), 'OK', 'delete')
})

t.test('the cluster keeps working: jobs run, a failover still works under ACLs', async (t) => {
  t.equal(await healthProblem(cluster), undefined, 'jobs run')
  const before = await cluster.clusterState()
  const boss = await cluster.bossProcess()
  await boss.kill()
  cluster.workers.splice(cluster.workers.indexOf(boss), 1)
  const after = await waitFor(
    async () => {
      const s = await cluster.clusterState()
      return s.boss && s.boss.epoch > before.boss!.epoch && s.workers.length >= 1 ? s : undefined
    },
    { timeoutMs: 60_000, what: 'a new boss' },
  )
  t.ok(
    after.boss!.id !== before.boss!.id,
    `a new boss with a larger epoch (${before.boss!.epoch} → ${after.boss!.epoch})`,
  )
  t.equal(await healthProblem(cluster), undefined, 'jobs run under the new boss')
  t.same(deadProcesses(cluster), [])
})
