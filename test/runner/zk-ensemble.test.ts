/**
 * A 3-member ZooKeeper ensemble: losing the member a session is connected to keeps the session,
 * the registration and the leadership (README "Design notes", recipe 10; the client reconnects to another member in
 * about 0.8 s here).
 */
import t from 'tap'
import { startZkEnsemble, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { startSession } from '../fixtures/zk-tools.js'
import { ZkElection, ZkRegistry } from '../../runner/zk/index.js'
import { silentLogger } from '../../runner/logger.js'
import type { ConnectionState, Leadership } from '../../runner/contracts.js'

t.test('losing one member of three: session, registration and leadership survive', async (t) => {
  const zk = await startZkEnsemble(3)
  t.teardown(() => zk.close())
  const cluster = uniqueName('c')
  const a = await startSession({ servers: zk.connect, cluster, sessionTimeoutMs: 6000 })
  const o = await startSession({ servers: zk.connect, cluster, sessionTimeoutMs: 6000 })
  const registry = new ZkRegistry({
    session: a,
    nodeId: 'a',
    host: 'h',
    pid: 1,
    send: () => true,
    logger: silentLogger(),
  })
  const election = new ZkElection({ session: a, nodeId: 'a', host: 'h', pid: 1, logger: silentLogger() })
  const observerRegistry = new ZkRegistry({
    session: o,
    nodeId: 'o',
    host: 'h',
    pid: 2,
    send: () => true,
    logger: silentLogger(),
  })
  const observer = new ZkElection({ session: o, nodeId: 'o', host: 'h', pid: 2, logger: silentLogger() })
  t.teardown(async () => {
    await Promise.all([election.close(), registry.close(), observer.close(), observerRegistry.close()])
    await Promise.all([a.close(), o.close()])
  })
  const states: ConnectionState[] = []
  a.on('state', (s: ConnectionState) => states.push(s))
  const elected: Leadership[] = []
  await registry.register('svc', 'addr.a')
  await election.registerCandidate('boss', 'addr.a', { onElected: (l) => void elected.push(l) })
  const node = election.candidateNode('boss')
  const sessionId = a.sessionId
  t.equal(elected.length, 1)
  await waitFor(async () => (await observer.whereisGlobal('boss'))?.id === 'a', { what: 'observer sees a' })

  const port = a.connectedPort()
  const victim = zk.servers.find((s) => s.port === port)
  t.ok(victim, `connected to member on port ${port}`)
  await victim!.kill()
  await waitFor(() => states.includes('suspended'), { what: 'suspended' })
  await waitFor(() => a.state === 'connected', { timeoutMs: 30_000, what: 'reconnected to another member' })
  t.not(a.connectedPort(), port, 'now on another member')
  t.equal(a.sessionId, sessionId, 'same session')
  t.notOk(states.includes('lost'), `never lost (${states.join(',')})`)
  await waitFor(() => elected.at(-1)?.isCurrent(), { timeoutMs: 30_000, what: 'leading again' })
  t.equal(election.candidateNode('boss'), node, 'same election node: leadership kept')
  // In doubt (suspended) the leader gave its leadership up at once; reconnected with the same session
  // and still first in line, it leads again under a new, greater epoch — never the old one again.
  t.ok(elected.length >= 2, `leadership was taken again after the suspension (${elected.length} terms)`)
  t.ok(elected.at(-1)!.epoch > elected[0]!.epoch, `epoch ${elected[0]!.epoch} → ${elected.at(-1)!.epoch}`)
  t.notOk(elected[0]!.isCurrent(), 'the first leadership is over')
  const reg = await a.exists(a.path('services', 'svc', 'a'))
  t.equal(reg?.ephemeralOwner, sessionId, 'registration still owned by the session')
  await waitFor(async () => (await observerRegistry.getCapable('svc')).length === 1, {
    what: 'observer sees the registration',
  })
  await waitFor(async () => (await observer.whereisGlobal('boss'))?.epoch === elected.at(-1)!.epoch, {
    what: 'observer sees the current epoch',
  })
})
