/**
 * Fault: a live worker's ZooKeeper registration vanishes while it runs jobs — as when it moves to a
 * new session after a quorum loss (its old session's znodes go), or it is cut off from ZooKeeper
 * only. Here a stranger deletes its `nodes/<id>` and `services/worker/<id>` znodes mid-job. The
 * worker is alive and reachable on NATS, so the boss must not requeue what it runs (guarantee 3):
 * it asks the worker first, and the worker keeps its jobs. Found by the ZooKeeper quorum fault,
 * where the boss re-ran the 8 jobs of a worker that was only changing sessions.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, logEntries, startClusterPatiently, waitForLog } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'
import { zk as zkCalls, zkRaw } from '../hostile/helpers.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import { executionLines, settleWorkload, startWorkload, verifyWorkload } from '../helpers/workload.js'

const SESSION_MS = 2000
const JOBS = 24
const JOB_MS = 3000
t.setTimeout(600_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const raw = await zkRaw(zk.connect)
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  zkCalls.close(raw)
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  const fault = "a live worker's registration vanishes mid-job"
  t.test(`a live worker whose registration vanishes mid-job keeps its jobs (run ${run})`, (t) =>
    faultRun(t, { fault, run, bound: 'the boss keeps the jobs of a worker alive on NATS' }, async (check) => {
      const cluster = uniqueName('rg')
      const c = new TestCluster({
        zk,
        nats,
        cluster,
        workers: 3,
        concurrency: 4,
        functionsDir,
        sessionTimeoutMs: SESSION_MS,
      })
      t.teardown(() => c.close())
      await startClusterPatiently(c, 2)
      const w = startWorkload(c, { count: JOBS, jobMs: JOB_MS })
      await waitFor(() => executionLines(w.runsFile).length >= 8, { timeoutMs: 60_000, what: 'eight jobs started' })
      const state = await c.clusterState()
      const victim = state.workers.find((x) => x.running > 0)
      check.ok(victim, 'a worker runs jobs')
      const victimPid = victim!.pid
      const runningOnVictim = executionLines(w.runsFile).filter((l) => l.pid === victimPid).length
      const boss = await c.bossProcess()
      const faultAt = Date.now()
      const removed = [
        await zkCalls.remove(raw, `/${cluster}/nodes/${victim!.id}`),
        await zkCalls.remove(raw, `/${cluster}/services/worker/${victim!.id}`),
      ]
      check.same(removed, ['OK', 'OK'], "the worker's znodes were deleted from outside")
      const verdict = verifyWorkload(w, await settleWorkload(c, w, 90_000))
      const kept = await waitForLog(
        boss,
        /answers on NATS: it keeps its jobs|may be alive: it keeps its jobs/,
        faultAt,
        1000,
      ).catch(() => undefined)

      check.ok(runningOnVictim > 0, `jobs were running on the victim (${runningOnVictim})`)
      checkWorkload(check, verdict, JOBS)
      // Either the boss saw the registration gone and asked the worker (alive: it keeps its jobs), or the
      // worker restored its znodes first (own-nodes.ts) and the boss never saw it gone: no requeue either way.
      const proc = c.workers.find((p) => p.pid === victimPid)
      const restored = proc
        ? logEntries(proc, /deleted or changed by someone else; restoring it/, faultAt)[0]
        : undefined
      check.ok(kept ?? restored, 'the boss kept the jobs of the live worker, or the worker restored its znodes first')
      check.ok(
        c.workers.every((p) => p.running),
        'no worker exited',
      )
      const decision = kept
        ? `the boss kept them (decided ${kept.time - faultAt} ms after the deletion)`
        : restored
          ? `the worker restored its znodes ${restored.time - faultAt} ms after the deletion`
          : 'neither the boss nor the worker reacted'
      const notes = `${runningOnVictim} jobs were running on the victim; ${decision}`
      return { verdict, measuredMs: kept ? kept.time - faultAt : null, notes }
    }),
  )
}
