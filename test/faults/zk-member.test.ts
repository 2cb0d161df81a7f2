/**
 * Fault: a 3-member ZooKeeper ensemble (every process given all members) loses one member mid-run —
 * the leader member, or the follower serving the boss — while long jobs run in half the slots and short
 * ones flow through the rest. Guarantee 2: nothing acknowledged is lost; no process dies, so nothing
 * starts twice. A boss whose connection was in doubt gives up its term and starts a new one (a new
 * epoch, often in the same process): that change of term is judged like any other — fencing on the
 * wire, the acknowledgement order, the running jobs adopted rather than dispatched again.
 */
import t from 'tap'
import { fourLetterWord, startNats, startZkEnsemble, uniqueName, type ZkServer } from '../helpers/servers.js'
import {
  TestCluster,
  e2eFunctionsDir,
  logEntries,
  startClusterPatiently,
  type BosunProcess,
} from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { zkEnsembleWhole, zkLeaderMember } from '../helpers/server-probes.js'
import { watchWire } from '../helpers/fault-observer.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import {
  checkBossChange,
  inFlightWorkload,
  processOf,
  takeoverEvidence,
  waitLongsRunning,
} from '../helpers/in-flight.js'
import { executionGapAfter, executionLines, settleWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNNERS = 3
const CONCURRENCY = 4
const LONGS = (RUNNERS * CONCURRENCY) / 2
const QUEUED = 1000
/** Longest pause in job starts after the kill. */
const BOUND_MS = 6000
t.setTimeout(900_000)

const zk = await startZkEnsemble(3, { tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

type Pick = 'leader' | 'follower'

/** ZooKeeper session id of a bosun process: the last one its log announced. */
function sessionOf(p: BosunProcess): bigint | undefined {
  let sid: string | undefined
  for (const l of p.logLines())
    if (l.component === 'zk-session' && typeof l.sessionId === 'string' && l.sessionId !== '') sid = l.sessionId
  return sid === undefined ? undefined : BigInt(`0x${sid}`)
}

/** Session ids a member serves (`cons`). */
async function sessionsOn(s: ZkServer): Promise<bigint[]> {
  return [...(await fourLetterWord(s.port, 'cons', 1000)).matchAll(/sid=0x([0-9a-f]+)/g)].map((m) =>
    BigInt(`0x${m[1]}`),
  )
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

for (const which of ['leader', 'follower'] as const) {
  for (let run = 1; run <= 3; run++) {
    const fault = `ZooKeeper: kill -9 of the ${which} member of 3`
    const bound = `job starts pause ≤ ${BOUND_MS} ms`
    t.test(`kill -9 of the ZooKeeper ${which} member mid-run (run ${run})`, (t) =>
      faultRun(t, { fault, run, bound }, async (check) => {
        const cluster = uniqueName('fzm')
        const c = new TestCluster({
          zk,
          nats,
          cluster,
          workers: RUNNERS + 1,
          concurrency: CONCURRENCY,
          functionsDir,
          sessionTimeoutMs: SESSION_MS,
        })
        t.teardown(() => c.close())
        await startClusterPatiently(c, RUNNERS)
        const wire = await watchWire(nats.url, cluster)
        t.teardown(() => wire.stop())
        // Long enough to still run when a new term (if any) begins, on a loaded machine too.
        const w = inFlightWorkload(c, { longs: LONGS, longMs: 10_000, queued: QUEUED, shortMs: 3 })
        await waitLongsRunning(w, LONGS)
        await waitFor(() => executionLines(w.runsFile).length >= LONGS + QUEUED / 4, {
          timeoutMs: 60_000,
          what: 'a quarter of the short jobs started',
        })
        const before = await c.clusterState()
        const boss = processOf(c, before.boss!.pid)
        const victim = await pickMember(which, boss)
        const bossSession = sessionOf(boss)
        const servedBoss = bossSession !== undefined && (await sessionsOn(victim)).includes(bossSession)
        const faultAt = Date.now()
        await victim.kill()
        t.teardown(() => (victim.running ? undefined : victim.restart())) // if the run fails half-way

        const verdict = verifyWorkload(w, await settleWorkload(c, w, 120_000))
        const gap = executionGapAfter(w.runsFile, faultAt)
        const after = await c.waitReady(RUNNERS, 60_000)
        const termChanged = after.boss!.epoch !== before.boss!.epoch
        const bossNow = c.workers.find((p) => p.pid === after.boss!.pid && p.running)
        // A new term after the kill: when it began dispatching, and which jobs crossed it.
        const newTerm = termChanged
          ? c.workers.flatMap((p) => logEntries(p, /^boss term dispatching$/, faultAt))[0]
          : undefined
        const evidence = newTerm ? takeoverEvidence(w, faultAt, faultAt, newTerm.time) : undefined

        checkWorkload(check, verdict, LONGS + QUEUED)
        check.ok(
          executionLines(w.runsFile).some((l) => l.at > faultAt),
          'jobs started after the kill (it hit mid-run)',
        )
        check.ok(bossNow, `the boss after the fault (pid ${after.boss!.pid}) is a live worker of this cluster`)
        check.ok(after.boss!.epoch >= before.boss!.epoch, 'the epoch never went back')
        if (termChanged) check.ok(newTerm, 'the new term began dispatching')
        const fence = checkBossChange(check, wire, {
          oldEpoch: before.boss!.epoch,
          changed: termChanged,
          ...(evidence ? { evidence } : {}),
        })
        check.ok(c.workers.every((p) => p.running) && c.api.running, 'no bosun process exited')
        check.atMost(gap, BOUND_MS, 'job starts resumed within the bound after the kill')
        const lostSession = logEntries(boss, /^ZooKeeper session lost$/, faultAt).length > 0
        await victim.restart() // back to 3 members for the next run, all of them synced
        await waitFor(() => zkEnsembleWhole(zk), { timeoutMs: 60_000, what: 'the ensemble whole again' })
        const change =
          `changed (epoch ${before.boss!.epoch} → ${after.boss!.epoch}, ` +
          `boss pid ${before.boss!.pid} → ${after.boss!.pid}${lostSession ? ', its session was lost' : ''})`
        const notes = [
          `killed member served the boss: ${servedBoss}`,
          `term ${termChanged ? change : 'kept'}`,
          `longest pause in starts ${gap} ms`,
          fence,
        ].join('; ')
        return { verdict, measuredMs: gap, notes }
      }),
    )
  }
}
