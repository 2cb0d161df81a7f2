/**
 * Fault: one worker is cut off from NATS mid-job (a TCP proxy between it and nats-server resets every
 * connection) while its ZooKeeper session lives on, so the registry still lists it. It cannot report
 * results and the boss cannot reach it. What a user expects: its jobs still finish — the boss requeues
 * them once the worker has answered "no responders" for its unreachable grace (10 s) — and the cut-off
 * worker stops them first (it aborts what it runs after NATS has been gone for half that grace), so two
 * attempts of a job never run at once. When the link heals, the worker's late hand-backs change
 * nothing. Every other job starts once with attempts 1.
 */
import t from 'tap'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir, startClusterPatiently, waitForLog } from '../helpers/processes.js'
import { startTcpProxy } from '../helpers/tcp-proxy.js'
import { waitFor } from '../helpers/wait.js'
import { checkWorkload, faultRun } from '../helpers/fault-report.js'
import {
  endLines,
  executionLines,
  settleWorkload,
  startsByJob,
  startWorkload,
  verifyWorkload,
  type Explain,
} from '../helpers/workload.js'

const SESSION_MS = 2000
const CONCURRENCY = 4
/** Jobs on the victim: longer than the boss's grace, so without the worker's abort both attempts overlap. */
const VICTIM_JOB_MS = 16_000
const QUEUED = 100
/** The worker aborts its jobs after half the boss's unreachable grace (10 s); a second of slack. */
const ABORT_BOUND_MS = 6000
/** The boss requeues after its grace (10 s) at its next reconcile (every 2 s); slack for a loaded machine. */
const RERUN_BOUND_MS = 20_000
t.setTimeout(900_000)
const zk = await startZooKeeper({ tickTime: 100 })
const nats = await startNats()
const functionsDir = e2eFunctionsDir()
t.teardown(async () => {
  await nats.close()
  await zk.close()
})

for (let run = 1; run <= 3; run++) {
  const fault = 'a worker cut off from NATS (ZooKeeper still sees it)'
  const explainedAs = "the cut-off worker's jobs (aborted before the re-run)"
  const bound =
    `its jobs aborted ≤ ${ABORT_BOUND_MS} ms and re-run ≤ ${RERUN_BOUND_MS} ms after the cut, ` +
    'never two attempts at once'
  t.test(`a worker cut off from NATS mid-job while ZooKeeper still sees it (run ${run})`, (t) =>
    faultRun(t, { fault, run, bound, explainedAs }, async (check) => {
      const cluster = uniqueName('wn')
      const proxy = await startTcpProxy(nats.url)
      t.teardown(() => proxy.close())
      // First the boss, then the victim alone (so the long jobs all go to it), then the other runners.
      const c = new TestCluster({
        zk,
        nats,
        cluster,
        workers: 0,
        concurrency: CONCURRENCY,
        functionsDir,
        sessionTimeoutMs: SESSION_MS,
      })
      t.teardown(() => c.close())
      const boss = c.addWorker()
      await waitForLog(boss, /I am the boss/, 0, 120_000)
      const victim = c.addWorker({ NATS_URL: `nats://${proxy.address}` })
      await startClusterPatiently(c, 1)
      const w = startWorkload(c, {
        count: CONCURRENCY + QUEUED,
        firstBatchSize: CONCURRENCY,
        jobMs: (n) => (n < CONCURRENCY ? VICTIM_JOB_MS : 5),
      })
      await waitFor(() => executionLines(w.runsFile).filter((l) => l.pid === victim.pid).length >= CONCURRENCY, {
        timeoutMs: 60_000,
        what: 'the victim running its long jobs',
      })
      const onVictim = new Set(
        executionLines(w.runsFile)
          .filter((l) => l.pid === victim.pid)
          .map((l) => l.jobId),
      )
      const cutAt = Date.now()
      proxy.cut()
      // Then the other runners, for the re-runs and the queue (ready long before the boss's grace ends).
      c.addWorker()
      c.addWorker()
      await c.waitReady(3, 120_000)
      // Every job the victim ran starts again elsewhere; then the link heals.
      await waitFor(
        () => [...onVictim].every((id) => (startsByJob(w.runsFile).get(id) ?? []).some((s) => s.pid !== victim.pid)),
        { timeoutMs: 60_000, what: "the victim's jobs re-run elsewhere" },
      ).catch(() => undefined)
      proxy.heal()
      const healedAt = Date.now()
      const settled = await settleWorkload(c, w, 120_000)
      const ends = endLines(w.endsFile)
      const firstEnd = (id: string) => ends.find((e) => e.jobId === id && e.pid === victim.pid)
      const explain: Explain = (starts) => {
        const [first, ...rest] = starts
        if (rest.length !== 1) return `${starts.length} starts`
        if (first!.pid !== victim.pid || first!.at > cutAt)
          return 'the first start was not on the cut-off worker before the cut'
        const end = firstEnd(first!.jobId)
        if (!end) return 'the first attempt never stopped'
        if (end.at > rest[0]!.at)
          return `the first attempt ran until ${end.at - rest[0]!.at} ms after the re-run started`
        return undefined
      }
      const verdict = verifyWorkload(w, settled, explain)
      const aborted = [...onVictim].map((id) => firstEnd(id)).filter((e) => e?.outcome === 'aborted')
      const abortMax = Math.max(...[...onVictim].map((id) => (firstEnd(id)?.at ?? Infinity) - cutAt))
      const starts = startsByJob(w.runsFile)
      const rerunMax = Math.max(
        ...[...onVictim].map((id) => (starts.get(id)?.find((s) => s.pid !== victim.pid)?.at ?? Infinity) - cutAt),
      )
      const listed = await waitFor(async () => (await c.clusterState()).workers.some((x) => x.pid === victim.pid), {
        timeoutMs: 30_000,
        what: 'the victim listed',
      }).catch(() => false)

      check.equal(onVictim.size, CONCURRENCY, 'the victim ran every long job when it was cut off')
      check.equal(aborted.length, CONCURRENCY, 'the cut-off worker aborted its jobs (it could not report them)')
      check.atMost(abortMax, ABORT_BOUND_MS, 'it aborted them within the bound after the cut')
      check.atMost(rerunMax, RERUN_BOUND_MS, 'the boss re-ran them within the bound after the cut')
      checkWorkload(check, verdict, CONCURRENCY + QUEUED)
      check.same(
        [...onVictim].filter((id) => !verdict.explained.includes(id)),
        [],
        'each job of the victim ran again, after its first attempt stopped',
      )
      check.ok(victim.running && listed, 'the cut-off worker lives on and is listed after the heal')
      const notes =
        `aborted ${abortMax} ms after the cut, re-run ${rerunMax} ms after it; ` + `healed after ${healedAt - cutAt} ms`
      return { verdict, measuredMs: rerunMax, notes }
    }),
  )
}
