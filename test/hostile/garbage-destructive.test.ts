/**
 * Garbage written by a stranger that is destructive enough to get clusters of its own (the rest is
 * in garbage.test.ts): a garbage election node that sorts BEFORE the real leader, and a wrong-shape
 * dispatch carrying a forged huge epoch. Each cluster must keep a real boss, run jobs, and lose no
 * process.
 */
import { connect as natsConnect } from '@nats-io/transport-node'
import t from 'tap'
import { TestCluster } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { deadProcesses, enc, SESSION_TIMEOUT_MS, startCluster, zk, zkRaw } from './helpers.js'

const zkServer = await startZooKeeper()
const nats = await startNats()
const others: TestCluster[] = []
const raw = await zkRaw(zkServer.connect)
const nc = await natsConnect({ servers: nats.url })
t.teardown(async () => {
  zk.close(raw)
  await nc.close().catch(() => undefined)
  await Promise.all(others.map((c) => c.close()))
  await nats.close()
  await zkServer.close()
})
/** A cluster of its own, closed at the end. */
async function startVictim(prefix: string): Promise<{ victimName: string; victim: TestCluster }> {
  const victimName = uniqueName(prefix)
  const victim = new TestCluster({
    sessionTimeoutMs: SESSION_TIMEOUT_MS,
    zk: zkServer,
    nats,
    cluster: victimName,
    workers: 3,
    concurrency: 2,
  })
  others.push(victim)
  await startCluster(victim)
  return { victimName, victim }
}

t.test('DESTRUCTIVE: a garbage election node sorting BEFORE the real leader', async (t) => {
  const { victimName, victim } = await startVictim('glow')
  const before = await victim.clusterState()
  // A persistent node named like an election node with a sequence lower than any real one.
  t.equal(
    await zk.create(
      raw,
      `/${victimName}/elections/boss/_c_00000000-0000-0000-0000-000000000000-garbage-n_0000000000`,
      enc('not json'),
    ),
    'OK',
  )
  // What a watcher of the election sees: the boss must stay visible (or a valid leader found).
  const seen = await waitFor(
    async () => {
      const s = await victim.clusterState()
      return s.boss ? s : undefined
    },
    { timeoutMs: 5000, what: 'a boss in GET /cluster' },
  ).catch(() => undefined)
  t.ok(seen?.boss, `GET /cluster still names a boss (before: ${before.boss?.id}, now: ${seen?.boss?.id ?? 'null'})`)
  const job = await victim.post('/jobs?wait=15000', { function: 'echo', payload: 'after fake leader' })
  t.equal(job.status, 200, `a job is accepted and finishes (answer ${job.status} ${job.body?.code ?? ''})`)
  t.equal(job.body?.state, 'succeeded')
  // And when the real boss goes, another real worker must take over.
  const boss = victim.workers.find((w) => w.pid === before.boss?.pid)
  if (boss) {
    await boss.stop()
    victim.workers.splice(victim.workers.indexOf(boss), 1)
  }
  const after = await waitFor(
    async () => {
      const s = await victim.clusterState()
      return s.boss && s.boss.id !== before.boss?.id ? s.boss : undefined
    },
    { timeoutMs: 15_000, what: 'a new real boss' },
  ).catch(() => undefined)
  t.ok(after, `a new boss is elected after the real one leaves (got ${after?.id ?? 'none'})`)
  t.same(deadProcesses(victim), [], 'no process exited')
  await zk.remove(raw, `/${victimName}/elections/boss/_c_00000000-0000-0000-0000-000000000000-garbage-n_0000000000`)
})

t.test(
  'DESTRUCTIVE: a wrong-shape dispatch carrying a forged huge epoch does not fence out the real boss',
  async (t) => {
    const { victimName, victim } = await startVictim('gepo')
    const before = await victim.clusterState()
    // Jobs that are not jobs, under an epoch no boss has: nothing here is a valid dispatch.
    const forged = {
      v: 1,
      type: 'job.dispatch',
      from: 'bosun.x.proc.stranger',
      body: { epoch: Number.MAX_SAFE_INTEGER, jobs: [42, 'x', null, { id: 7 }] },
    }
    for (const w of before.workers) {
      const reply = await nc.request(`bosun.${victimName}.proc.${w.id}`, JSON.stringify(forged), { timeout: 5000 })
      t.match(new TextDecoder().decode(reply.data), /"type":"reply"/, `${w.id} answered`)
    }
    const ids = await Promise.all(
      Array.from(
        { length: 5 },
        async (_, i) => (await victim.post('/jobs', { function: 'echo', payload: i })).body?.id as string,
      ),
    )
    const final = await Promise.all(
      ids.map((id) => victim.waitJob(id, 20_000).catch((err: Error) => ({ state: err.message }))),
    )
    t.same(
      final.map((j: any) => j.state),
      Array(5).fill('succeeded'),
      'jobs submitted afterwards succeed',
    )
    const after = await victim.clusterState()
    t.equal(
      after.boss?.epoch,
      before.boss?.epoch,
      `no boss churn: the epoch stays ${before.boss?.epoch} (now ${after.boss?.epoch})`,
    )
    t.same(deadProcesses(victim), [], 'no process exited')
  },
)
