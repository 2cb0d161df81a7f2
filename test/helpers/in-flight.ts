/**
 * Jobs in flight at a boss change: a workload whose first `longs` jobs last several session timeouts
 * (their lengths spread `stepMs` apart, so they end one after another across the takeover) and fill
 * the slots, with short jobs queued behind them; helpers to time the fault against those jobs; and
 * the evidence that the new boss took the adoption path — jobs still running when it began
 * dispatching (adopted, never dispatched again) and jobs that ended while no boss acted (their results
 * held by the worker, then applied, not re-run).
 */
import type { BosunProcess, LogEntry, TestCluster } from './processes.js'
import { logEntries } from './processes.js'
import { waitFor } from './wait.js'
import { endLines, executionLines, startWorkload, type Workload } from './workload.js'
import { earlyAcks, fenceReport, fenceSummary } from './fence-checks.js'
import type { WireLog } from './fault-observer.js'
import type { Checks } from './fault-report.js'

export interface InFlightOptions {
  /** Long jobs (e.g. every slot of the cluster: job-running workers × concurrency). */
  longs: number
  /** Length of the shortest long job. @defaultValue 5000 */
  longMs?: number
  /** Each further long job lasts this much longer. @defaultValue 250 */
  stepMs?: number
  /** Short jobs queued behind the long ones. @defaultValue 300 */
  queued?: number
  /** Length of a short job. @defaultValue 5 */
  shortMs?: number
  batchSize?: number
  /** The short jobs are submitted once this resolves. */
  queueAfter?: Promise<unknown>
  /**
   * Every other long job goes alone with `?wait=1`: its worker writes its final record itself, so
   * both ways of writing a final are in flight at the boss change. @defaultValue true
   */
  waitedLongs?: boolean
}

/** Submit `longs` long jobs in a first batch, then `queued` short ones (dispatched in submission order). */
export function inFlightWorkload(c: TestCluster, o: InFlightOptions): Workload {
  const longMs = o.longMs ?? 5000
  const step = o.stepMs ?? 250
  const short = o.shortMs ?? 5
  return startWorkload(c, {
    count: o.longs + (o.queued ?? 300),
    firstBatchSize: o.longs,
    batchSize: o.batchSize ?? 100,
    jobMs: (n) => (n < o.longs ? longMs + n * step : short),
    ...(o.queueAfter ? { restAfter: o.queueAfter } : {}),
    ...(o.waitedLongs === false ? {} : { waited: (n: number) => n < o.longs && n % 2 === 0 }),
  })
}

/** Long jobs (the first `longs` submissions) running now: started, not ended. */
function runningLong(w: Workload, longs: number): { jobId: string; n: number; at: number }[] {
  const ended = new Set(endLines(w.endsFile).map((l) => l.jobId))
  return executionLines(w.runsFile).filter((l) => l.n < longs && !ended.has(l.jobId))
}

/** Wait until all `longs` long jobs run at once. */
export async function waitLongsRunning(w: Workload, longs: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(() => runningLong(w, longs).length >= longs, { timeoutMs, what: `all ${longs} long jobs running` })
}

/**
 * Wait until the first long job to end is due within `leadMs`: a fault signalled then has jobs ending
 * while no boss acts, and others running on past the takeover.
 */
export async function waitForEndsWithin(w: Workload, longs: number, leadMs: number, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    () => {
      const ends = runningLong(w, longs).map((l) => l.at + w.jobMs(l.n))
      return ends.length > 0 && Math.min(...ends) - Date.now() <= leadMs
    },
    { timeoutMs, intervalMs: 10, what: `a long job due to end within ${leadMs} ms` },
  )
}

export interface TakeoverEvidence {
  /** Long jobs started before the fault that still ran when the new boss began dispatching. */
  adoptedRunning: string[]
  /** Jobs that ended after the old boss stopped acting and before the new boss began dispatching. */
  heldResults: string[]
}

/** Which jobs crossed the takeover, from their own start and end lines. */
export function takeoverEvidence(
  w: Workload,
  faultAt: number,
  oldStoppedAt: number,
  dispatchingAt: number,
): TakeoverEvidence {
  const ends = new Map(endLines(w.endsFile).map((l) => [l.jobId, l]))
  const adoptedRunning: string[] = []
  const heldResults: string[] = []
  for (const s of executionLines(w.runsFile)) {
    if (s.at >= faultAt) continue
    const e = ends.get(s.jobId)
    if (!e || e.outcome !== 'ok') continue
    if (e.at > dispatchingAt) adoptedRunning.push(s.jobId)
    else if (e.at > oldStoppedAt) heldResults.push(s.jobId)
  }
  return { adoptedRunning, heldResults }
}

/**
 * When a boss first began dispatching a term after `since` (the earliest 'boss term dispatching' log line
 * of any worker: on a loaded machine the boss the API showed first may lose its term to another).
 */
export async function dispatchingAt(c: TestCluster, since: number, timeoutMs = 60_000): Promise<number> {
  return (await firstLog(c, /^boss term dispatching$/, since, timeoutMs)).time
}

/** The earliest log line matching `pattern` at or after `since` of any worker of `c`. */
export async function firstLog(c: TestCluster, pattern: RegExp, since: number, timeoutMs = 60_000): Promise<LogEntry> {
  return waitFor(
    () => {
      const lines = c.workers.flatMap((p) => logEntries(p, pattern, since))
      return lines.length === 0 ? undefined : lines.reduce((a, b) => (b.time < a.time ? b : a))
    },
    { timeoutMs, intervalMs: 50, what: `a worker to log ${pattern}` },
  )
}

/** The worker process with `pid`. */
export function processOf(c: TestCluster, pid: number): BosunProcess {
  const p = c.workers.find((x) => x.pid === pid)
  if (!p) throw new Error(`pid ${pid} is not a worker of this cluster`)
  return p
}

/**
 * Guarantee 1 at every change of epoch in the run, the acknowledgement rule, and (when given) that
 * the takeover adopted running jobs and applied held results. Returns a line for the notes.
 */
export function checkBossChange(
  check: Checks,
  log: WireLog,
  o: { oldEpoch: number; changed?: boolean; evidence?: TakeoverEvidence; needHeld?: boolean },
): string {
  const fence = fenceReport(log)
  check.same(fence.overwrites, [], 'no record written by a newer epoch was overwritten by an older one')
  check.same(fence.staleAccepted, [], 'no worker accepted a dispatch older than an epoch it had been sent')
  if (o.changed) {
    // Whichever boss followed (on a loaded machine more than one change of epoch may follow the fault).
    const stored = log.writes.filter((w) => (w.epoch ?? 0) > o.oldEpoch && w.storedSeq !== undefined).length
    check.ok(stored > 0, `a boss newer than epoch ${o.oldEpoch} stored writes: the fence was tested`)
  }
  const acks = earlyAcks(log)
  check.same(acks.violations, [], 'every acknowledged result was stored final before its acknowledgement')
  check.ok(acks.acks > 0, 'results were acknowledged (the acknowledgement order was tested)')
  if (o.evidence) {
    check.ok(o.evidence.adoptedRunning.length > 0, 'jobs were running across the takeover (adopted, not re-run)')
    if (o.needHeld) check.ok(o.evidence.heldResults.length > 0, 'jobs ended while no boss acted (held results applied)')
  }
  const ev = o.evidence
  const adoption = ev ? `; ${ev.adoptedRunning.length} adopted running, ${ev.heldResults.length} held results` : ''
  const ackNote = `${acks.acks} acks, all after the durable write: ${acks.violations.length === 0}`
  return `${fenceSummary(fence)}; ${ackNote}${adoption}`
}
