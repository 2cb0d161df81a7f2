/**
 * ZkElection in one process against a real ZooKeeper (one session per member): the seed's defects
 * (README "Design notes", seed defects 2–4) and the recipe hazards (predecessor vanishing, ephemeralOwner check,
 * suspended → deposed at once, fencing epochs, resign, rejoin after expiry and server restart).
 * Multi-process behaviour is in zk-candidates.test.ts.
 */
import t, { type Test } from 'tap'
import zookeeper from 'node-zookeeper-client'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { expireSession, freeze, raw, rawClient, startSession } from '../fixtures/zk-tools.js'
import { ZkElection, type ElectionHooks, type ZkSession } from '../../runner/zk/index.js'
import { errors } from '../../runner/errors.js'
import { silentLogger } from '../../runner/logger.js'
import type { DeposedReason, LeaderInfo, Leadership } from '../../runner/contracts.js'

const zk = await startZooKeeper()
t.teardown(() => zk.close())
const NAME = 'boss'

interface Member {
  id: string
  session: ZkSession
  election: ZkElection
  elected: Leadership[]
  deposed: Array<[DeposedReason, number]>
  leaders: Array<LeaderInfo | null>
  join(): Promise<LeaderInfo | null>
}

async function member(
  t: Test,
  cluster: string,
  id: string,
  opts: { hooks?: ElectionHooks; sessionTimeoutMs?: number } = {},
): Promise<Member> {
  const session = await startSession({ servers: zk.connect, cluster, sessionTimeoutMs: opts.sessionTimeoutMs ?? 2000 })
  const election = new ZkElection({
    session,
    nodeId: id,
    host: 'h',
    pid: 1,
    logger: silentLogger(),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
  })
  const m: Member = {
    id,
    session,
    election,
    elected: [],
    deposed: [],
    leaders: [],
    join: () =>
      election.registerCandidate(NAME, `addr.${id}`, {
        onElected: (l) => void m.elected.push(l),
        onDeposed: (reason, epoch) => void m.deposed.push([reason, epoch]),
      }),
  }
  election.on('leader', (name, leader) => name === NAME && m.leaders.push(leader))
  t.teardown(async () => {
    await election.close()
    await session.close()
  })
  return m
}

const leading = (m: Member) => m.elected.at(-1)?.isCurrent() === true

t.test('whereisGlobal on a non-candidate follows leader changes (and is cached)', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  const o = await member(t, cluster, 'o')
  t.equal(await o.election.whereisGlobal(NAME), null, 'nobody leads yet')
  t.equal((await a.join())?.id, 'a')
  t.equal((await b.join())?.id, 'a')
  await waitFor(async () => (await o.election.whereisGlobal(NAME))?.id === 'a', { what: 'o sees a' })
  const before = o.session.requestCount
  const seen = await o.election.whereisGlobal(NAME)
  t.equal(o.session.requestCount, before, 'cache hit: no request')
  t.match(seen, { id: 'a', address: 'addr.a', host: 'h', pid: 1, epoch: 1 })
  await a.election.resign(NAME)
  await waitFor(async () => (await o.election.whereisGlobal(NAME))?.id === 'b', { what: 'o sees b after the change' })
  t.equal((await o.election.whereisGlobal(NAME))?.epoch, 2)
  await b.election.resign(NAME)
  await waitFor(async () => (await o.election.whereisGlobal(NAME)) === null, { what: 'null when nobody leads' })
  // Between a's resignation and b's fencing nobody leads (null): only real leaders are ever named.
  t.same(
    o.leaders.filter((l) => l !== null).map((l) => `${l.id}@${l.epoch}`),
    ['a@1', 'b@2'],
    "'leader' events in order",
  )
  t.equal(o.leaders.at(-1), null, 'last event: nobody leads')
})

t.test('a losing candidate never caches itself as the leader', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  await a.join()
  t.equal((await b.join())?.id, 'a', 'registerCandidate answers the real leader')
  t.equal((await b.election.whereisGlobal(NAME))?.id, 'a')
  t.equal(b.elected.length, 0)
  t.equal(b.election.candidateState(NAME), 'following')
  t.notOk(
    b.leaders.some((l) => l?.id === 'b'),
    'b never saw itself as leader while a leads',
  )
  await a.election.resign(NAME)
  await waitFor(() => leading(b), { what: 'b elected' })
  await waitFor(async () => (await b.election.whereisGlobal(NAME))?.id === 'b', { what: 'b sees itself once it leads' })
})

t.test('the predecessor vanishing between getChildren and its watch: children re-read, elected later', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  await a.join()
  await b.join()
  const bNode = b.election.candidateNode(NAME)
  let vanished = false
  const c = await member(t, cluster, 'c', {
    hooks: {
      async beforeWatchPredecessor(_name, predecessor) {
        if (vanished || predecessor !== bNode) return
        vanished = true
        await b.election.resign(NAME) // deleted after c read the children, before c watches it
      },
    },
  })
  await c.join()
  t.ok(vanished, 'the predecessor vanished mid-evaluation')
  const cNode = c.election.candidateNode(NAME)
  t.equal(c.election.candidateState(NAME), 'following')
  await a.election.resign(NAME)
  await waitFor(() => leading(c), { what: 'c elected (its watch moved to a)' })
  t.equal(c.election.candidateNode(NAME), cNode, 'c never rejoined (same node)')
  t.equal(c.elected[0]?.epoch, 2)
})

t.test('ephemeralOwner check: a first node owned by another session is never acted on', async (t) => {
  const cluster = uniqueName('c')
  const foreign = await rawClient(zk.connect)
  t.teardown(() => foreign.close())
  let swapped: string | undefined
  const x = await member(t, cluster, 'x', {
    hooks: {
      async beforeOwnershipCheck(_name, node) {
        if (swapped) return
        swapped = node
        // Our path now holds a node of another session (what CURATOR-696 ran into).
        await raw.remove(foreign, node)
        await raw.create(
          foreign,
          node,
          Buffer.from(JSON.stringify({ v: 1, id: 'intruder', address: 'i', host: 'h', pid: 9 })),
          zookeeper.CreateMode.EPHEMERAL,
        )
      },
    },
  })
  await x.join()
  t.ok(swapped, 'the node was replaced before the check')
  await waitFor(() => x.election.candidateState(NAME) === 'following', { what: 'x follows behind the foreign node' })
  t.equal(x.elected.length, 0, 'never elected on a node it does not own')
  t.not(x.election.candidateNode(NAME), swapped, 'joined again with a node of its own')
  t.equal(await x.election.whereisGlobal(NAME), null, 'the unfenced foreign node is not a leader')
  foreign.close()
  await waitFor(() => leading(x), { what: 'x elected once the foreign node is gone' })
})

t.test('suspended deposes the leader at once; after reconnecting it leads with a NEW epoch', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a', { sessionTimeoutMs: 3000 })
  await a.join()
  const first = a.elected[0]!
  t.equal(first.epoch, 1)
  t.ok(first.isCurrent())
  await freeze(zk.server)
  const frozenAt = Date.now()
  t.teardown(() => zk.server.resume())
  await waitFor(() => a.deposed.length > 0, { what: 'deposed' })
  const deposedAfter = Date.now() - frozenAt
  zk.server.resume()
  t.same(a.deposed[0], ['suspended', 1])
  t.ok(deposedAfter < 3000, `deposed ${deposedAfter} ms after the freeze, before the 3000 ms session timeout`)
  t.ok(first.signal.aborted, 'signal aborted')
  t.notOk(first.isCurrent())
  await waitFor(() => leading(a), { timeoutMs: 30_000, what: 'leading again' })
  t.ok(a.elected.at(-1)!.epoch > 1, `new epoch ${a.elected.at(-1)!.epoch}`)
  t.notOk(first.isCurrent(), 'the old leadership stays dead')
})

t.test('resign hands over in milliseconds; epochs strictly increase; the leader deposed as resigned', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a', { sessionTimeoutMs: 20_000 })
  const b = await member(t, cluster, 'b', { sessionTimeoutMs: 20_000 })
  await a.join()
  await b.join()
  const started = Date.now()
  await a.election.resign(NAME)
  await waitFor(() => leading(b), { what: 'b elected' })
  t.ok(Date.now() - started < 5000, `handover in ${Date.now() - started} ms, not a 20 s session timeout`)
  t.same(a.deposed, [['resigned', 1]])
  t.ok(b.elected[0]!.epoch > a.elected[0]!.epoch)
  await a.join()
  await b.election.resign(NAME)
  await waitFor(() => a.elected.length === 2 && leading(a), { what: 'a elected again' })
  t.ok(a.elected[1]!.epoch > b.elected[0]!.epoch, 'epochs only grow')
})

t.test('the leader stops at once when its node is deleted behind its back', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  await a.join()
  await b.join()
  const admin = await rawClient(zk.connect)
  t.teardown(() => admin.close())
  await raw.remove(admin, a.election.candidateNode(NAME)!)
  await waitFor(() => a.deposed.length === 1, { what: 'a deposed' })
  t.equal(a.deposed[0]?.[0], 'superseded')
  await waitFor(() => leading(b), { what: 'b elected' })
  await waitFor(() => a.election.candidateState(NAME) === 'following', { what: 'a follows with a new node' })
})

t.test('session expiry: deposed, rejoins on the new session without a restart', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  await a.join()
  await b.join()
  await expireSession(zk.connect, a.session)
  await waitFor(() => leading(b), { what: 'b elected' })
  t.ok(a.deposed.length >= 1, 'a deposed')
  t.notOk(leading(a))
  await waitFor(() => a.election.candidateState(NAME) === 'following', { what: 'a rejoined' })
  await b.election.resign(NAME)
  await waitFor(() => leading(a), { what: 'a elected on its new session' })
  t.ok(a.elected.at(-1)!.epoch > b.elected[0]!.epoch)
})

t.test('a ZooKeeper server restart: the election goes on, exactly one leader', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const b = await member(t, cluster, 'b')
  const o = await member(t, cluster, 'o')
  await a.join()
  await b.join()
  await zk.server.restart()
  await waitFor(
    async () => {
      const leader = await o.election.whereisGlobal(NAME)
      const current = [a, b].filter(leading)
      return (
        leader !== null &&
        current.length === 1 &&
        current[0]!.id === leader.id &&
        current[0]!.elected.at(-1)!.epoch === leader.epoch
      )
    },
    { timeoutMs: 30_000, what: 'one current leader, seen by o' },
  )
  const all = [...a.elected, ...b.elected].map((l) => l.epoch)
  t.same(
    all,
    [...all].sort((x, y) => x - y),
    'epochs grow',
  )
  t.equal(new Set(all).size, all.length, 'no epoch reused')
})

t.test('bad input and double candidacies are refused', async (t) => {
  const a = await member(t, uniqueName('c'), 'a')
  await t.rejects(a.election.registerCandidate('a/b', 'x', { onElected() {} }), { code: errors.VALIDATION.code })
  await t.rejects(a.election.registerCandidate('ok', '', { onElected() {} }), { code: errors.VALIDATION.code })
  await t.rejects(a.election.registerCandidate('ok', 'x', {} as never), { code: errors.VALIDATION.code })
  await a.join()
  await t.rejects(a.join(), { code: errors.ALREADY_STARTED.code })
  await a.election.resign('never-joined')
  await a.election.close()
  t.same(a.deposed, [['closed', 1]], 'close deposes with reason closed')
  await t.rejects(a.election.whereisGlobal(NAME), { code: errors.CLOSED.code })
})
