/**
 * Benchmark bookkeeping: summaries over runs (median, min, max), a readable table, and the JSON
 * result files (`bench/results/<name>-<timestamp>.json` plus `bench/results/latest-<name>.json`).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { dirname, join, resolve } from 'node:path'

/** The repository root (works from bench/lib and from dist/bench/lib). */
export const REPO_ROOT = (() => {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return resolve(import.meta.dirname, '..', '..')
  }
})()

/** One figure measured over several runs. */
export interface Summary {
  median: number
  min: number
  max: number
  /** Every run's value, in run order. */
  runs: number[]
}

/** A target from the issue: `value <= limit` (or `>=` for 'min'). */
export interface Target {
  kind: 'max' | 'min'
  limit: number
}

/** One row of a result table. */
export interface Row {
  name: string
  unit: string
  summary: Summary
  target?: Target
  note?: string
}

export function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

/** Median, min and max of the finite values (NaN entries, e.g. a failed run, are kept in `runs`). */
export function summarize(runs: number[]): Summary {
  const ok = runs.filter((x) => Number.isFinite(x))
  return {
    median: median(ok),
    min: ok.length ? Math.min(...ok) : Number.NaN,
    max: ok.length ? Math.max(...ok) : Number.NaN,
    runs,
  }
}

/** 'met' / 'missed' for a row with a target (judged on the median), '' otherwise. */
export function verdict(row: Row): '' | 'met' | 'missed' {
  if (!row.target || !Number.isFinite(row.summary.median)) return row.target ? 'missed' : ''
  const v = row.summary.median
  return (row.target.kind === 'max' ? v <= row.target.limit : v >= row.target.limit) ? 'met' : 'missed'
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return '—'
  const a = Math.abs(x)
  if (Number.isInteger(x) && a < 100_000) return String(x)
  if (a >= 100_000) return Math.round(x).toLocaleString('en-US')
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  if (a >= 0.01 || a === 0) return x.toFixed(2)
  return x.toExponential(1)
}

/** A fixed-width text table: figure, median, min–max, runs, target, verdict. */
export function formatTable(title: string, rows: Row[]): string {
  const head = ['figure', 'median', 'min–max', 'n', 'target', '']
  const body = rows.map((r) => [
    `${r.name} (${r.unit})`,
    fmt(r.summary.median),
    `${fmt(r.summary.min)}–${fmt(r.summary.max)}`,
    String(r.summary.runs.filter((x) => Number.isFinite(x)).length) +
      (r.summary.runs.some((x) => !Number.isFinite(x)) ? `/${r.summary.runs.length}` : ''),
    r.target ? `${r.target.kind === 'max' ? '≤' : '≥'} ${fmt(r.target.limit)}` : '',
    verdict(r) + (r.note ? ` ${r.note}` : ''),
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  return (
    [`\n== ${title} ==`, line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n'
  )
}

/** Machine context recorded with every result (the figures are only meaningful with it). */
export function machineInfo(): Record<string, unknown> {
  return { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', loadavg: loadavg() }
}

/** The commit the figures were measured on ('+dirty' when the work tree had changes). */
export function gitRevision(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8' }).trim()
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
      }).trim() !== ''
    return dirty ? `${rev}+dirty` : rev
  } catch {
    return 'unknown'
  }
}

/** HEAD when the benchmark started (the build it measures). */
const REVISION_AT_START = gitRevision()

/** Write `bench/results/<name>-<timestamp>.json` and `bench/results/latest-<name>.json`; returns the first path. */
export function writeResults(name: string, data: Record<string, unknown>): string {
  const dir = join(REPO_ROOT, 'bench', 'results')
  mkdirSync(dir, { recursive: true })
  const stamp = new Date().toISOString().replace(/[:.]/g, '-')
  const json =
    JSON.stringify(
      { name, finishedAt: new Date().toISOString(), commit: REVISION_AT_START, machine: machineInfo(), ...data },
      null,
      2,
    ) + '\n'
  const file = join(dir, `${name}-${stamp}.json`)
  writeFileSync(file, json)
  writeFileSync(join(dir, `latest-${name}.json`), json)
  return file
}

/** Progress line on stderr (the table goes to stdout). */
export function progress(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}
