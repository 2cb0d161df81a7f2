/**
 * Five candidates in five processes (test/fixtures/zk-candidate.ts) against a real ZooKeeper, with
 * this process as a non-candidate observer: one leader; graceful close and kill -9 hand over and the
 * observer's whereisGlobal follows; only the successor's watch fires (no herd); a leader frozen with
 * SIGSTOP past its session timeout is replaced and, once resumed, never acts with its old epoch;
 * epochs of successive leaders strictly increase.
 */
import t, { type Test } from 'tap'
import { startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { freeze, spawnFixture, startSession, type FixtureProcess } from '../fixtures/zk-tools.js'
import { ZkElection } from '../../runner/zk/index.js'
import { silentLogger } from '../../runner/logger.js'

const SESSION_MS = 2000
const NAME = 'boss'
const zk = await startZooKeeper()
t.teardown(() => zk.close())
const cluster = uniqueName('c')
const fixture = new URL('../fixtures/zk-candidate.ts', import.meta.url).pathname

const procs = new Map<string, FixtureProcess>()
for (const id of ['n1', 'n2', 'n3', 'n4', 'n5']) {
  procs.set(
    id,
    spawnFixture(fixture, {
      ZK_SERVERS: zk.connect,
      ZK_CLUSTER: cluster,
      ZK_ELECTION: NAME,
      NODE_ID: id,
      ZK_SESSION_MS: String(SESSION_MS),
    }),
  )
}
t.teardown(async () => {
  for (const p of procs.values()) {
    p.child.kill('SIGCONT')
    p.child.kill('SIGKILL')
  }
  await Promise.all([...procs.values()].map((p) => p.exited))
})

const observerSession = await startSession({ servers: zk.connect, cluster, sessionTimeoutMs: SESSION_MS })
const observer = new ZkElection({
  session: observerSession,
  nodeId: 'observer',
  host: 'h',
  pid: process.pid,
  logger: silentLogger(),
})
t.teardown(async () => {
  await observer.close()
  await observerSession.close()
})

type Stats = { deleted: number; all: number; state: string | null }

/** Ask every live process for its watch counters, after a ZooKeeper round trip in that process. */
async function stats(ids: string[]): Promise<Map<string, Stats>> {
  const out = new Map<string, Stats>()
  await Promise.all(
    ids.map(async (id) => {
      const p = procs.get(id)!
      const seen = p.events.filter((e) => e.ev === 'stats').length
      p.send('ping')
      await waitFor(() => p.events.filter((e) => e.ev === 'stats').length > seen, {
        timeoutMs: 20_000,
        what: `stats from ${id}`,
      })
      out.set(id, p.events.filter((e) => e.ev === 'stats').at(-1) as unknown as Stats)
    }),
  )
  return out
}

const live = () =>
  [...procs.entries()].filter(([, p]) => p.child.exitCode === null && p.child.signalCode === null).map(([id]) => id)
const leaderNow = async () => (await observer.whereisGlobal(NAME))?.id

/** Leader change: exactly one new 'deleted' watch firing among the survivors (the successor's). */
async function herdCheck(t: Test, before: Map<string, Stats>, survivors: string[]): Promise<void> {
  const after = await stats(survivors)
  const deleted = survivors.reduce((n, id) => n + (after.get(id)!.deleted - before.get(id)!.deleted), 0)
  const all = survivors.reduce((n, id) => n + (after.get(id)!.all - before.get(id)!.all), 0)
  t.equal(deleted, 1, 'exactly one predecessor watch fired for the departed leader (no herd)')
  t.ok(all <= 2, `at most one more watch event (the new leader's epoch write): ${all}`)
  t.equal(survivors.filter((id) => after.get(id)!.state === 'leading').length, 1, 'exactly one process leads')
}

t.test('five processes elect exactly one leader, seen by a non-candidate', async (t) => {
  await waitFor(() => [...procs.values()].every((p) => p.events.some((e) => e.ev === 'ready')), {
    timeoutMs: 120_000,
    what: 'all candidates ready',
  })
  await waitFor(async () => (await leaderNow()) !== undefined, { what: 'a leader' })
  const s = await stats(live())
  t.equal([...s.values()].filter((x) => x.state === 'leading').length, 1, 'one process leads')
  t.equal([...s.values()].filter((x) => x.state === 'following').length, 4, 'four follow')
  const leader = await leaderNow()
  t.equal(s.get(leader!)?.state, 'leading', 'the observer names the process that leads')
})

t.test('the leader closes: the next is elected at once, only its successor watch fires', async (t) => {
  const old = (await observer.whereisGlobal(NAME))!
  const survivors = live().filter((id) => id !== old.id)
  const before = await stats(survivors)
  procs.get(old.id)!.send('close')
  await procs.get(old.id)!.exited
  await waitFor(
    async () => {
      const now = await observer.whereisGlobal(NAME)
      return now !== null && now.id !== old.id
    },
    { what: 'observer sees the new leader' },
  )
  const next = (await observer.whereisGlobal(NAME))!
  t.ok(next.epoch > old.epoch, `epoch ${old.epoch} → ${next.epoch}`)
  t.ok(
    procs.get(old.id)!.events.some((e) => e.ev === 'deposed' && e.reason === 'closed'),
    'old leader deposed (closed)',
  )
  await herdCheck(t, before, survivors)
})

t.test('kill -9 of the leader: a new leader after its session expires', async (t) => {
  const old = (await observer.whereisGlobal(NAME))!
  const survivors = live().filter((id) => id !== old.id)
  const before = await stats(survivors)
  const killedAt = Date.now()
  procs.get(old.id)!.child.kill('SIGKILL')
  await procs.get(old.id)!.exited
  await waitFor(
    async () => {
      const now = await observer.whereisGlobal(NAME)
      return now !== null && now.id !== old.id
    },
    { timeoutMs: 30_000, what: 'observer sees the new leader' },
  )
  const next = (await observer.whereisGlobal(NAME))!
  t.ok(next.epoch > old.epoch, `epoch ${old.epoch} → ${next.epoch}`)
  // The successor is elected when ZooKeeper expires the dead leader's session: the session timeout, not a
  // multiple of it (measured to the new leadership's own start, not to when this observer noticed).
  const failoverMs = Date.parse(next.since) - killedAt
  t.ok(
    failoverMs >= 0 && failoverMs <= SESSION_MS + 1500,
    `new leader elected ${failoverMs} ms after the kill (session ${SESSION_MS} ms, bound ${SESSION_MS + 1500} ms)`,
  )
  await herdCheck(t, before, survivors)
})

t.test('SIGSTOP the leader past its session timeout, then SIGCONT: replaced, deposed, never acts again', async (t) => {
  const old = (await observer.whereisGlobal(NAME))!
  const frozen = procs.get(old.id)!
  await waitFor(() => frozen.events.some((e) => e.ev === 'act' && e.epoch === old.epoch), { what: 'the leader acts' })
  await freeze({ pid: frozen.child.pid })
  t.teardown(() => void frozen.child.kill('SIGCONT'))
  await waitFor(
    async () => {
      const now = await observer.whereisGlobal(NAME)
      return now !== null && now.id !== old.id
    },
    { timeoutMs: 30_000, what: 'a new leader while the old one is frozen' },
  )
  const next = (await observer.whereisGlobal(NAME))!
  t.ok(next.epoch > old.epoch, `epoch ${old.epoch} → ${next.epoch}`)
  const resumedAt = Date.now()
  frozen.child.kill('SIGCONT')
  await waitFor(() => frozen.events.some((e) => e.ev === 'deposed' && e.epoch === old.epoch), {
    what: 'old leader reports itself deposed',
  })
  const deposed = frozen.events.find((e) => e.ev === 'deposed' && e.epoch === old.epoch)!
  t.match(deposed.reason, /^(suspended|lost)$/, `deposed: ${String(deposed.reason)}`)
  await waitFor(async () => (await stats([old.id])).get(old.id)?.state === 'following', {
    timeoutMs: 30_000,
    what: 'old leader rejoined as a follower',
  })
  const lateActs = frozen.events.filter((e) => e.ev === 'act' && e.epoch === old.epoch && e.t >= resumedAt)
  t.same(lateActs, [], 'no action with the old epoch after resuming')
  t.equal((await observer.whereisGlobal(NAME))?.id, next.id, 'the new leader still leads')
})

t.test('epochs of successive leaders strictly increase', async (t) => {
  const elected = [...procs.values()]
    .flatMap((p) => p.events.filter((e) => e.ev === 'elected'))
    .sort((a, b) => a.t - b.t)
  t.ok(elected.length >= 4, `${elected.length} elections`)
  const epochs = elected.map((e) => e.epoch as number)
  t.ok(
    epochs.every((e, i) => i === 0 || e > epochs[i - 1]!),
    `strictly increasing: ${epochs.join(',')}`,
  )
})
