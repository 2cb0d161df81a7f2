/**
 * Renders the fault suite's report (.bosun/fault-report.jsonl, written by test/faults/*) as the
 * Markdown table in README: one row per fault, summed over its runs; the gap is the median.
 * Usage: node dist/scripts/fault-table.js [report.jsonl]
 */
import { readFileSync } from 'node:fs'

interface Row {
  fault: string
  run: number
  submitted: number
  acknowledged: number
  succeeded: number
  lost: number
  ranTwice: number
  failoverGapMs: number | null
}

function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : Math.round((s[m - 1]! + s[m]!) / 2)
}

const file = process.argv[2] ?? '.bosun/fault-report.jsonl'
const rows: Row[] = readFileSync(file, 'utf8')
  .split('\n')
  .filter((l) => l.trim().startsWith('{'))
  .map((l) => JSON.parse(l) as Row)
const byFault = new Map<string, Row[]>()
for (const r of rows) byFault.set(r.fault, [...(byFault.get(r.fault) ?? []), r])
const out = ['| fault | runs | submitted | acknowledged | succeeded | lost | run twice | gap (median ms) |', '|---|---|---|---|---|---|---|---|']
for (const [fault, rs] of byFault) {
  const sum = (k: keyof Row) => rs.reduce((n, r) => n + (Number(r[k]) || 0), 0)
  const gap = median(rs.map((r) => r.failoverGapMs).filter((g): g is number => typeof g === 'number'))
  out.push(`| ${fault} | ${rs.length} | ${sum('submitted')} | ${sum('acknowledged')} | ${sum('succeeded')} | ${sum('lost')} | ${sum('ranTwice')} | ${gap ?? '–'} |`)
}
console.log(out.join('\n'))
