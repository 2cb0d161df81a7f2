/**
 * A candidacy never drops out of the election because ZooKeeper failed while it (re)joined: the
 * first evaluation after registerCandidate fails (connection cut on the create, or after getChildren
 * on the predecessor's getData), and the candidacy keeps retrying until it is in the election again
 * (its node exists, it follows, and it is elected when the leader resigns). Real ZooKeeper; the
 * candidate's connection goes through a TCP proxy so that only its link breaks.
 */
import t, { type Test } from 'tap'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { raw, rawClient, startSession } from '../fixtures/zk-tools.js'
import { ZkElection, type ElectionHooks, type ZkSession } from '../../runner/zk/index.js'
import { errors } from '../../runner/errors.js'
import { silentLogger } from '../../runner/logger.js'
import type { LeaderInfo, Leadership } from '../../runner/contracts.js'

const zk = await startZooKeeper()
t.teardown(() => zk.close())
const NAME = 'boss'

interface Member {
  id: string
  session: ZkSession
  election: ZkElection
  elected: Leadership[]
  join(): Promise<LeaderInfo | null>
}

interface MemberOptions {
  servers?: string
  hooks?: ElectionHooks
  sessionTimeoutMs?: number
}

async function member(t: Test, cluster: string, id: string, opts: MemberOptions = {}): Promise<Member> {
  const servers = opts.servers ?? zk.connect
  const session = await startSession({ servers, cluster, sessionTimeoutMs: opts.sessionTimeoutMs ?? 2000 })
  const hooks = opts.hooks ? { hooks: opts.hooks } : {}
  const election = new ZkElection({ session, nodeId: id, host: 'h', pid: 1, logger: silentLogger(), ...hooks })
  const m: Member = {
    id,
    session,
    election,
    elected: [],
    join: () => election.registerCandidate(NAME, `addr.${id}`, { onElected: (l) => void m.elected.push(l) }),
  }
  t.teardown(async () => {
    await election.close()
    await session.close()
  })
  return m
}

async function proxy(t: Test): Promise<TcpProxy> {
  const p = await startTcpProxy(zk.connect)
  t.teardown(() => p.close())
  return p
}

const leading = (m: Member) => m.elected.at(-1)?.isCurrent() === true

/** `m` is back in the election: a node of its current session exists and it follows `leader`. */
async function backInTheElection(t: Test, m: Member): Promise<void> {
  const what = `${m.id} follows again`
  await waitFor(() => m.election.candidateState(NAME) === 'following', { timeoutMs: 30_000, what })
  const node = m.election.candidateNode(NAME)
  t.ok(node, `${m.id} has an election node`)
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  const stat = await raw.exists(observer, node!)
  t.ok(stat, 'the node exists on the server')
  t.equal(stat?.ephemeralOwner.toString('hex'), m.session.sessionId, 'owned by its current session')
}

t.test('rejoin (resign + registerCandidate): the getData of the first evaluation fails; retried', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const link = await proxy(t)
  let armed = false
  let cutAt: string | undefined
  const b = await member(t, cluster, 'b', {
    servers: link.address,
    hooks: {
      beforeWatchPredecessor(_name, predecessor) {
        if (!armed || cutAt) return
        cutAt = predecessor
        link.cut() // after create + getChildren: the predecessor's getData cannot be answered
      },
    },
  })
  await a.join()
  t.equal((await b.join())?.id, 'a', 'b follows a')
  // What worker/process.ts rejoin() does: resign, then registerCandidate again.
  await b.election.resign(NAME)
  armed = true
  const outcome = await b.join().then(
    (leader) => ({ leader }),
    (err: unknown) => ({ err }),
  )
  t.ok(cutAt, 'the connection was cut during the first evaluation')
  t.comment(`registerCandidate settled with ${'err' in outcome ? String((outcome.err as Error).message) : 'a leader'}`)
  t.not(b.election.candidateState(NAME), undefined, 'still a candidate after the failed evaluation')
  await t.rejects(b.join(), { code: errors.ALREADY_STARTED.code }, 'the candidacy is still registered')
  link.heal()
  await backInTheElection(t, b)
  await a.election.resign(NAME)
  await waitFor(() => leading(b), { timeoutMs: 30_000, what: 'b elected after a resigned' })
})

t.test('first registerCandidate: the create fails, the candidacy retries until it is in', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const link = await proxy(t)
  let cut = false
  const b = await member(t, cluster, 'b', {
    servers: link.address,
    hooks: {
      beforeJoin() {
        if (cut) return
        cut = true
        link.cut() // the protected create cannot be sent
      },
    },
  })
  await a.join()
  const outcome = await b.join().then(
    (leader) => ({ leader }),
    (err: unknown) => ({ err }),
  )
  t.ok(cut, 'the connection was cut before the create')
  t.comment(`registerCandidate settled with ${'err' in outcome ? String((outcome.err as Error).message) : 'a leader'}`)
  t.not(b.election.candidateState(NAME), undefined, 'still a candidate after the failed evaluation')
  link.heal()
  await backInTheElection(t, b)
  await a.election.resign(NAME)
  await waitFor(() => leading(b), { timeoutMs: 30_000, what: 'b elected after a resigned' })
})

t.test('resign while retrying ends the candidacy; a new registerCandidate starts afresh', async (t) => {
  const cluster = uniqueName('c')
  const link = await proxy(t)
  let cut = false
  const b = await member(t, cluster, 'b', {
    servers: link.address,
    hooks: {
      beforeJoin() {
        if (cut) return
        cut = true
        link.cut()
      },
    },
  })
  await b.join().catch(() => undefined)
  t.ok(cut)
  await b.election.resign(NAME)
  t.equal(b.election.candidateState(NAME), undefined, 'no candidacy after resign')
  link.heal()
  await waitFor(() => b.session.state === 'connected', { timeoutMs: 30_000, what: 'b connected again' })
  t.equal((await b.join())?.id, 'b', 'a new candidacy is accepted and elected')
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  t.equal((await raw.getChildren(observer, b.session.path('elections', NAME))).length, 1, 'one election node')
})

t.test('a resign whose delete is lost in a connection blip is finished later: no orphan to wait behind', async (t) => {
  const cluster = uniqueName('c')
  const a = await member(t, cluster, 'a')
  const link = await proxy(t)
  // A session that outlives the blip: the server keeps b's node unless b deletes it.
  const b = await member(t, cluster, 'b', { servers: link.address, sessionTimeoutMs: 8000 })
  await a.join()
  await b.join()
  const oldNode = b.election.candidateNode(NAME)!
  const sessionId = b.session.sessionId
  link.cut()
  await b.election.resign(NAME) // what worker/process.ts rejoin() does first; the delete cannot be sent
  const observer = await rawClient(zk.connect)
  t.teardown(() => observer.close())
  t.ok(await raw.exists(observer, oldNode), 'the old node is still on the server after resign()')
  link.heal()
  await waitFor(() => b.session.state === 'connected', { timeoutMs: 30_000, what: 'b connected again' })
  t.equal(b.session.sessionId, sessionId, 'the same session: the server never deletes the old node by itself')
  t.equal((await b.join())?.id, 'a', 'b joins again behind a')
  const gone = async () => (await raw.exists(observer, oldNode)) === null
  await waitFor(gone, { timeoutMs: 15_000, what: 'the old node deleted' })
  await a.election.resign(NAME)
  await waitFor(() => leading(b), { timeoutMs: 30_000, what: 'b elected after a resigned' })
})
