/**
 * The compare benchmark's tables: one row per figure with both sides' medians over the runs, their
 * ranges, and the ratio bosun / BullMQ (of the medians); then, per side, CPU µs per job per process
 * for every workload. Plain fixed-width text for stdout; the same rows go to the JSON results.
 */
import { summarize, type Summary } from '../lib/report.js'

/** One figure measured on both sides. */
export interface PairRow {
  name: string
  unit: string
  bosun: Summary
  bullmq: Summary
  /** bosun median / BullMQ median (NaN when a side has no figure). */
  ratio: number
  /** Shown after the ratio (e.g. what a side ran, or why it has no figure). */
  note?: string
}

/** A pair row from both sides' per-run values. */
export function pairRow(name: string, unit: string, bosun: number[], bullmq: number[], note?: string): PairRow {
  const b = summarize(bosun)
  const q = summarize(bullmq)
  return { name, unit, bosun: b, bullmq: q, ratio: b.median / q.median, ...(note ? { note } : {}) }
}

export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '—'
  const a = Math.abs(x)
  if (Number.isInteger(x) && a < 100_000) return String(x)
  if (a >= 100_000) return Math.round(x).toLocaleString('en-US')
  if (a >= 100) return x.toFixed(0)
  if (a >= 10) return x.toFixed(1)
  return x.toFixed(2)
}

const range = (s: Summary) => (Number.isFinite(s.min) ? `${fmt(s.min)}–${fmt(s.max)}` : '—')
const count = (s: Summary) => {
  const ok = s.runs.filter((x) => Number.isFinite(x)).length
  return ok === s.runs.length ? String(ok) : `${ok}/${s.runs.length}`
}

function layout(head: string[], body: string[][], leftColumns = 1): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)))
      .join('  ')
      .trimEnd()
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n') + '\n'
}

/** Both sides, ratio, ranges and run counts. */
export function formatPairs(title: string, rows: PairRow[]): string {
  const head = ['figure', 'unit', 'bosun', 'BullMQ', 'ratio', 'bosun range', 'BullMQ range', 'n', '']
  const body = rows.map((r) => [
    r.name,
    r.unit,
    fmt(r.bosun.median),
    fmt(r.bullmq.median),
    Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '—',
    range(r.bosun),
    range(r.bullmq),
    `${count(r.bosun)}/${count(r.bullmq)}`,
    r.note ?? '',
  ])
  return `\n== ${title} ==\n` + layout(head, body, 2)
}

/** Per process (rows) and workload (columns): the median CPU µs per job over the runs. */
export function formatCpu(title: string, columns: { key: string; values: Record<string, number>[] }[]): string {
  const labels: string[] = []
  for (const c of columns)
    for (const v of c.values) for (const k of Object.keys(v)) if (!labels.includes(k)) labels.push(k)
  const order = (k: string) => (k === 'total' ? 2 : k === 'bench' ? 1 : 0)
  labels.sort((a, b) => order(a) - order(b))
  const body = labels.map((label) => [
    label,
    ...columns.map((c) => fmt(summarize(c.values.map((v) => v[label] ?? Number.NaN)).median)),
  ])
  return `\n== ${title} ==\n` + layout(['process (µs/job)', ...columns.map((c) => c.key)], body)
}
