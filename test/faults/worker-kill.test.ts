/**
 * Fault: kill -9 of one worker, and of two workers at once, while they hold ~200 ms jobs.
 * Guarantees 2 and 3: nothing acknowledged is lost; a job starts again only if every earlier start
 * was on a killed worker (those duplicates are counted), and the re-run starts within the session
 * timeout + 1 s of the kill (not after a stall timer). The `start` function records each start.
 */
import t, { type Test } from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
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
} from '../helpers/workload.js'

const SESSION_MS = 2000
const RUNS = 3
const JOBS = 500
const JOB_MS = 200
/** Job-running workers (the boss is one more worker process and is never killed here). */
const RUNNERS = 4

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
// One cluster for both faults: every run replaces the workers it killed.
const c = new TestCluster({ zk, nats, cluster: uniqueName('fwk'), workers: RUNNERS + 1, concurrency: 8, functionsDir, sessionTimeoutMs: SESSION_MS })
t.teardown(async () => {
  await c.close()
  await nats.close()
  await zk.close()
})
await startClusterPatiently(c, RUNNERS)

/** Non-boss workers that started a job in the last `windowMs` (they hold jobs right now). */
async function busyRunners(c: TestCluster, runsFile: string, windowMs: number): Promise<BosunProcess[]> {
  const boss = await c.bossProcess()
  const since = Date.now() - windowMs
  const busy = new Set(executionLines(runsFile).filter((l) => l.at >= since).map((l) => l.pid))
  return c.workers.filter((w) => w.running && w !== boss && busy.has(w.pid))
}

async function killRun(t: Test, c: TestCluster, run: number, victims: number, fault: string): Promise<void> {
  await c.waitReady(RUNNERS, 120_000)
  const w = startWorkload(c, { count: JOBS, jobMs: JOB_MS, fn: 'start' })
  await waitFor(() => executionLines(w.runsFile).length >= JOBS * 0.25, { timeoutMs: 60_000, what: 'a quarter of the jobs started' })
  const chosen = (await busyRunners(c, w.runsFile, JOB_MS)).slice(0, victims)
  t.equal(chosen.length, victims, `${victims} busy non-boss worker(s) to kill`)
  const killedPids = new Set(chosen.map((p) => p.pid))
  const killedAt = Date.now()
  await Promise.all(chosen.map((p) => p.kill()))
  const midJob = executionLines(w.runsFile).filter((l) => killedPids.has(l.pid) && l.at > killedAt - JOB_MS + 20).length
  // Replacements for the next run start once the victims' jobs ran again (not to slow the re-runs down).
  await waitFor(() => attributeDuplicates(w.runsFile, killedPids, killedAt).rerunDelaysMs.length >= midJob, { timeoutMs: 30_000, what: 're-runs' }).catch(() => undefined)
  for (let i = 0; i < victims; i++) c.addWorker()

  const r = await settleWorkload(c, w, 120_000)
  const dup = attributeDuplicates(w.runsFile, killedPids, killedAt)
  const rerunMax = dup.rerunDelaysMs.length > 0 ? Math.max(...dup.rerunDelaysMs) : null
  const gap = executionGapAfter(w.runsFile, killedAt)
  recordFault({
    fault,
    run,
    ...r,
    failoverGapMs: rerunMax,
    notes: `duplicates ${dup.duplicates}, all on killed workers: ${dup.unexplained.length === 0}; jobs mid-run on the victims ${midJob}; longest execution gap ${gap} ms`,
  })
  t.comment(`run ${run}: ${JSON.stringify(r)}; duplicates ${dup.duplicates} (mid-job on victims ${midJob}); re-run ≤ ${rerunMax} ms after the kill`)

  t.equal(r.acknowledged, JOBS, 'every job was acknowledged')
  t.equal(r.lost, 0, 'no acknowledged job lost')
  t.same(dup.unexplained, [], 'no job started again after a start on a worker that stayed alive')
  t.ok(midJob > 0, 'the victims held jobs when they died')
  t.ok(dup.duplicates >= midJob, `every job the victims were running started again (${dup.duplicates} ≥ ${midJob})`)
  t.ok(rerunMax !== null && rerunMax <= SESSION_MS + 1000, `re-runs started within session timeout + 1 s of the kill (${rerunMax} ms)`)
}

for (const victims of [1, 2]) {
  const fault = victims === 1 ? 'kill -9 of a worker mid-job' : 'kill -9 of two workers at once mid-job'
  t.test(fault, async (t) => {
    for (let run = 1; run <= RUNS; run++) await t.test(`run ${run}`, (t) => killRun(t, c, run, victims, fault))
  })
}
