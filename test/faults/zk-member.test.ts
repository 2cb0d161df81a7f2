/**
 * Fault: a 3-member ZooKeeper ensemble (every process given all members) loses one member mid-run:
 * the leader member, and a follower (the one serving most clients). Guarantee 2: nothing
 * acknowledged is lost; no process dies, so nothing runs twice; the same process stays boss.
 */
import t, { type Test } from 'tap'
import { fourLetterWord, startNats, startZkEnsemble, uniqueName, type ZkServer } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, type BosunProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import {
  attributeDuplicates,
  executionGapAfter,
  executionLines,
  recordFault,
  settleWorkload,
  startClusterPatiently,
  startWorkload,
  zkLeaderMember,
} from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNS = 3
const JOBS = 2000

const zk = await startZkEnsemble(3, { tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
// One cluster for both faults (each run waits until it is whole again).
const c = new TestCluster({ zk, nats, cluster: uniqueName('fzm'), workers: 3, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
t.teardown(async () => {
  await c.close()
  await nats.close()
  await zk.close()
})
await startClusterPatiently(c, 2)

type Pick = 'leader' | 'follower'

/** ZooKeeper session id of a bosun process: the last one its log announced. */
function sessionOf(p: BosunProcess): bigint | undefined {
  let sid: string | undefined
  for (const l of p.logLines()) if (l.component === 'zk-session' && typeof l.sessionId === 'string' && l.sessionId !== '') sid = l.sessionId
  return sid === undefined ? undefined : BigInt(`0x${sid}`)
}

/** Session ids a member serves (`cons`). */
async function sessionsOn(s: ZkServer): Promise<bigint[]> {
  return [...(await fourLetterWord(s.port, 'cons', 1000)).matchAll(/sid=0x([0-9a-f]+)/g)].map((m) => BigInt(`0x${m[1]}`))
}

/** The member to kill: the leader, or the follower serving the boss (else the one serving most clients). */
async function pickMember(which: Pick, boss: BosunProcess): Promise<ZkServer> {
  const leader = await waitFor(() => zkLeaderMember(zk), { timeoutMs: 30_000, what: 'a ZooKeeper leader' })
  if (which === 'leader') return leader
  const bossSession = sessionOf(boss)
  let best: { s: ZkServer; n: number } | undefined
  for (const s of zk.servers) {
    if (s === leader) continue
    const sessions = await sessionsOn(s)
    const n = bossSession !== undefined && sessions.includes(bossSession) ? Infinity : sessions.length
    if (!best || n > best.n) best = { s, n }
  }
  return best!.s
}

async function memberRun(t: Test, c: TestCluster, run: number, which: Pick): Promise<void> {
  const before = await c.waitReady(2, 60_000)
  const boss = await c.bossProcess()
  const w = startWorkload(c, { count: JOBS, jobMs: 3, fn: 'start' })
  await waitFor(() => executionLines(w.runsFile).length >= JOBS * 0.25, { timeoutMs: 60_000, what: 'a quarter of the jobs started' })
  const victim = await pickMember(which, boss)
  const bossSession = sessionOf(boss)
  const servedBoss = bossSession !== undefined && (await sessionsOn(victim)).includes(bossSession)
  const faultAt = Date.now()
  await victim.kill()

  const r = await settleWorkload(c, w, 120_000)
  const dup = attributeDuplicates(w.runsFile, new Set(), faultAt)
  const gap = executionGapAfter(w.runsFile, faultAt)
  const after = await c.waitReady(2, 60_000)
  // A boss keeps its role unless it gave its session up (the ensemble took longer than the session
  // timeout to serve again, so its session could not be confirmed in time): then a change is legitimate.
  const bossLostSession = boss.logLines().some((l) => typeof l.time === 'number' && l.time >= faultAt && l.msg === 'ZooKeeper session lost')
  const fault = `ZooKeeper: kill -9 of the ${which} member of 3`
  const bossNote = `killed member served the boss: ${servedBoss}; boss ${after.boss?.pid === before.boss?.pid ? 'kept' : 'changed'}${bossLostSession ? ' (its session was lost)' : ''}, epoch ${before.boss?.epoch} → ${after.boss?.epoch}`
  recordFault({ fault, run, ...r, failoverGapMs: gap, notes: bossNote })
  t.comment(`run ${run}: ${JSON.stringify(r)}; duplicates ${dup.duplicates}; longest execution gap ${gap} ms; ${bossNote}`)

  t.equal(r.acknowledged, JOBS, 'every job was acknowledged')
  t.equal(r.lost, 0, 'no acknowledged job lost')
  t.equal(dup.duplicates, 0, 'no job started twice (no worker died)')
  t.ok(executionLines(w.runsFile).some((l) => l.at > faultAt), 'jobs ran after the kill (it hit mid-run)')
  if (!bossLostSession) t.equal(after.boss?.pid, before.boss?.pid, 'the boss kept its session, so it is still the boss (no boss change needed)')
  else t.ok(after.boss !== null, 'the boss lost its session (ensemble slower than the session timeout); a boss leads again')
  t.ok(c.workers.every((p) => p.running) && c.api.running, 'no bosun process exited')

  await victim.restart() // back to 3 members for the next run
}

for (const which of ['leader', 'follower'] as const) {
  t.test(`kill -9 of the ZooKeeper ${which} member mid-run`, async (t) => {
    for (let run = 1; run <= RUNS; run++) await t.test(`run ${run}`, (t) => memberRun(t, c, run, which))
  })
}
