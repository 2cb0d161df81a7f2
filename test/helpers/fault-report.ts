/**
 * One run of a fault, recorded after its assertions: `faultRun` runs the body, whose named checks go
 * through `Checks` (tap assertions that remember what failed), and appends one row to the fault report
 * (`BOSUN_FAULT_REPORT`, default `.bosun/fault-report.jsonl`) — passed or not, with the names of the
 * failed checks (or the error that ended the run), the commit and a run id. scripts/fault-table.ts
 * renders README's table from these rows and refuses failed, incomplete or mixed ones.
 */
import { execFileSync } from 'node:child_process'
import { appendFileSync, mkdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { Test } from 'tap'
import { ROOT } from './processes.js'
import type { WorkloadVerdict } from './workload.js'

/** One row of the fault report (one run of one fault). */
export interface FaultRow {
  v: 1
  fault: string
  /** 1, 2 or 3. */
  run: number
  runId: string
  commit: string
  /** Tracked files differed from the commit when the run started. */
  dirty: boolean
  passed: boolean
  /** Names of the checks that failed (and the error that ended the run, if any). */
  failed: string[]
  submitted: number
  acknowledged: number
  succeeded: number
  lost: number
  /** Jobs that started more than once because of the fault itself (a killed or cut-off worker). */
  twiceExplained: number
  /** Jobs that started more than once with no such reason (guarantee 3 broken). */
  twiceUnexplained: number
  /** How README names the explained duplicates of this fault (e.g. "jobs running on the victim"). */
  explainedAs: string
  /** The bound this run asserted, in words. */
  bound: string
  /** The figure measured for that bound (ms), or null. */
  measuredMs: number | null
  notes: string
  at: string
}

/** What a fault's description fixes before the run. */
export interface FaultMeta {
  fault: string
  run: number
  bound: string
  explainedAs?: string
}

/** What a run's body returns: the workload's verdict and its measured figures. */
export interface FaultFigures {
  verdict: WorkloadVerdict
  measuredMs: number | null
  notes: string
}

/** tap assertions that remember the names of those that failed. */
export class Checks {
  readonly failed: string[] = []

  constructor(private readonly t: Test) {}

  private note(passed: boolean, name: string): boolean {
    if (!passed) this.failed.push(name)
    return passed
  }

  ok(cond: unknown, name: string): boolean {
    return this.note(this.t.ok(cond, name), name)
  }

  equal<T>(found: T, wanted: T, name: string): boolean {
    return this.note(this.t.equal(found, wanted, name), name)
  }

  same(found: unknown, wanted: unknown, name: string): boolean {
    return this.note(this.t.same(found, wanted, name), name)
  }

  /** `value` is a number not above `bound`. */
  atMost(value: number | null | undefined, bound: number, name: string): boolean {
    const ok = typeof value === 'number' && Number.isFinite(value) && value <= bound
    return this.note(this.t.ok(ok, `${name} (${value} ≤ ${bound})`), name)
  }
}

/** The guarantees every fault checks on its workload (pass `acknowledged` when every job must be). */
export function checkWorkload(check: Checks, v: WorkloadVerdict, acknowledged?: number): void {
  if (acknowledged !== undefined) check.equal(v.acknowledged, acknowledged, 'every job was acknowledged')
  check.same(v.lost, [], 'no acknowledged job lost: every one succeeded')
  check.same(v.noStart, [], 'every succeeded job recorded a start (bosun did not report work that never ran)')
  check.same(v.wrongResult, [], "every result and start line belongs to its job's submission")
  check.same(v.wrongAttempts, [], 'attempts === 1 for every job that started once')
  check.same(v.unexplained, [], 'no job started twice unless the fault explains it')
  check.equal(v.strays, 0, 'no job ran that the API did not acknowledge')
}

let git: { commit: string; dirty: boolean } | undefined
function gitState(): { commit: string; dirty: boolean } {
  if (git) return git
  const run = (args: string[]) => execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim()
  try {
    git = { commit: run(['rev-parse', 'HEAD']), dirty: run(['status', '--porcelain', '--untracked-files=no']) !== '' }
  } catch {
    git = { commit: '', dirty: true }
  }
  return git
}

/** Where rows go. */
export function faultReportFile(): string {
  return process.env.BOSUN_FAULT_REPORT ?? join(ROOT, '.bosun', 'fault-report.jsonl')
}

/**
 * Run one fault run: `body` does the fault and its checks and returns its figures; the row is written
 * afterwards — also when the body throws (then `passed: false` with the error as a failed check).
 */
export async function faultRun(
  t: Test,
  meta: FaultMeta,
  body: (check: Checks) => Promise<FaultFigures>,
): Promise<void> {
  const check = new Checks(t)
  const g = gitState()
  let figures: FaultFigures | undefined
  let error: string | undefined
  try {
    figures = await body(check)
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
    throw err
  } finally {
    const v = figures?.verdict
    const row: FaultRow = {
      v: 1,
      fault: meta.fault,
      run: meta.run,
      runId: process.env.BOSUN_FAULT_RUN_ID ?? process.env.BOSUN_CI_RUN_ID ?? 'local',
      commit: g.commit,
      dirty: g.dirty,
      passed: error === undefined && check.failed.length === 0 && t.passing(),
      failed: error === undefined ? check.failed : [...check.failed, `error: ${error.split('\n')[0]}`],
      submitted: v?.submitted ?? NaN,
      acknowledged: v?.acknowledged ?? NaN,
      succeeded: v?.succeeded ?? NaN,
      lost: v?.lost.length ?? NaN,
      twiceExplained: v?.explained.length ?? NaN,
      twiceUnexplained: v?.unexplained.length ?? NaN,
      explainedAs: meta.explainedAs ?? '',
      bound: meta.bound,
      measuredMs: figures?.measuredMs ?? null,
      notes: figures?.notes ?? '',
      at: new Date().toISOString(),
    }
    const file = faultReportFile()
    mkdirSync(dirname(file), { recursive: true })
    appendFileSync(file, JSON.stringify(row) + '\n')
    t.comment(
      `${meta.fault} run ${meta.run}: ${row.passed ? 'passed' : `FAILED (${row.failed.join('; ')})`}; ${row.notes}`,
    )
  }
}
