/**
 * Fault: kill -9 of one worker, and of two workers at once, while they hold ~200 ms jobs.
 * Guarantees 2 and 3: nothing acknowledged is lost; a job starts again only if every earlier start was
 * on a killed worker and began at most the job's length plus a result-acknowledgement slack before the
 * kill (a job the victim had finished and delivered long before must not run again); every job the
 * victims were running starts again, within the session timeout + 1.5 s of the kill (not after a stall
 * timer). Every other job starts once with attempts 1. Half the jobs are waited for, so their
 * workers write their final records themselves.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, startClusterPatiently, type BosunProcess } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import {
  endLines,
  executionLines,
  killedWorkerExplains,
  settleWorkload,
  startWorkload,
  startsByJob,
  verifyWorkload,
  type Workload,
} from '../helpers/workload.js'

const SESSION_MS = 2000
const JOBS = 500
const JOB_MS = 200
/** A finished job's result reaches the boss and is acknowledged within this long (else it may run again). */
const ACK_SLACK_MS = 1000
/** Job-running workers (the boss is one more worker process and is never killed here). */
const RUNNERS = 4
const BOUND_MS = SESSION_MS + 1500
t.setTimeout(900_000)

const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

/** Non-boss workers running a job right now (a start line without an end line on that process). */
function busyRunners(c: TestCluster, boss: BosunProcess, w: Workload): BosunProcess[] {
  const ended = new Set(endLines(w.endsFile).map((l) => `${l.jobId} ${l.pid}`))
  const busy = new Set(
    executionLines(w.runsFile)
      .filter((l) => !ended.has(`${l.jobId} ${l.pid}`))
      .map((l) => l.pid),
  )
  return c.workers.filter((p) => p.running && p !== boss && busy.has(p.pid))
}

for (const victims of [1, 2]) {
  const fault = victims === 1 ? 'kill -9 of a worker mid-job' : 'kill -9 of two workers at once mid-job'
  const explainedAs = victims === 1 ? "the victim's unfinished jobs" : "the victims' unfinished jobs"
  for (let run = 1; run <= 3; run++) {
    t.test(`${fault} (run ${run})`, (t) =>
      faultRun(
        t,
        { fault, run, explainedAs, bound: `re-runs start ≤ ${BOUND_MS} ms after the kill` },
        async (check) => {
          const c = new TestCluster({
            zk,
            nats,
            cluster: uniqueName('fwk'),
            workers: RUNNERS + 1,
            concurrency: 8,
            functionsDir,
            sessionTimeoutMs: SESSION_MS,
          })
          t.teardown(() => c.close())
          await startClusterPatiently(c, RUNNERS)
          // Every other job is waited for: its worker writes its final itself (a victim may die after that write).
          const w = startWorkload(c, { count: JOBS, jobMs: JOB_MS, waited: (n) => n % 2 === 0 })
          await waitFor(() => executionLines(w.runsFile).length >= JOBS * 0.25, {
            timeoutMs: 60_000,
            what: 'a quarter of the jobs started',
          })
          const boss = await c.bossProcess()
          // The victims are chosen while they run jobs and killed at once.
          const chosen = await waitFor(
            () => {
              const busy = busyRunners(c, boss, w)
              return busy.length >= victims ? busy.slice(0, victims) : undefined
            },
            { timeoutMs: 30_000, intervalMs: 5, what: `${victims} non-boss worker(s) running jobs` },
          )
          check.equal(chosen.length, victims, `${victims} busy non-boss worker(s) to kill`)
          const killedPids = new Set(chosen.map((p) => p.pid))
          const killedAt = Date.now()
          await Promise.all(chosen.map((p) => p.kill()))
          const kill = { sentAt: killedAt, diedAt: Date.now() }
          // Jobs the victims were running: started there, never ended there.
          const ended = new Set(
            endLines(w.endsFile)
              .filter((l) => killedPids.has(l.pid))
              .map((l) => `${l.jobId} ${l.pid}`),
          )
          const midJob = executionLines(w.runsFile)
            .filter((l) => killedPids.has(l.pid) && !ended.has(`${l.jobId} ${l.pid}`))
            .map((l) => l.jobId)

          const verdict = verifyWorkload(
            w,
            await settleWorkload(c, w, 120_000),
            killedWorkerExplains(w, killedPids, kill, ACK_SLACK_MS),
          )
          const starts = startsByJob(w.runsFile)
          const rerunDelays = midJob
            .map((id) => (starts.get(id) ?? []).find((s) => !killedPids.has(s.pid))?.at)
            .map((at) => (at === undefined ? Infinity : at - killedAt))
          const rerunMax = rerunDelays.length > 0 ? Math.max(...rerunDelays) : null

          checkWorkload(check, verdict, JOBS)
          check.ok(midJob.length > 0, `the victims held jobs when they died (${midJob.length})`)
          check.same(
            midJob.filter((id) => !verdict.explained.includes(id)),
            [],
            'every job the victims were running started again elsewhere',
          )
          check.atMost(rerunMax, BOUND_MS, 're-runs started within session timeout + 1.5 s of the kill')
          const notes = [
            `${midJob.length} jobs running on the victims`,
            `${verdict.explained.length} started twice, all explained: ${verdict.unexplained.length === 0}`,
            `re-run ≤ ${rerunMax} ms after the kill`,
          ].join('; ')
          return { verdict, measuredMs: rerunMax, notes }
        },
      ),
    )
  }
}
