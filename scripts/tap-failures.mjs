// Prints every failing assertion of a tap log with its path (file › subtest › assertion) and the
// first lines of its diagnostic. Why: CI keeps only the tail of a run's output, and tap's summary
// there says how many failed, not which; .ci/run prints this list just before its last line.
// Plain JavaScript (no build step) so it works even when the build failed.
// Usage: node scripts/tap-failures.mjs <tap log> [--max N]
import { readFileSync } from 'node:fs'

const DIAGNOSTIC_LINES = 14
/** Failures printed in full unless `--max` says otherwise. */
const DEFAULT_MAX = 30

/**
 * The failures of a tap text: one entry per failing leaf assertion (a subtest that failed only
 * because an assertion inside it failed is not listed again).
 * @param {string} text the tap output (ANSI colours are stripped)
 * @returns {{ path: string[], diagnostic: string[] }[]}
 */
function tapFailures(text) {
  // eslint-disable-next-line no-control-regex
  const lines = text.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '').split('\n')
  /** @type {{ name: string, failuresBefore: number }[]} the open subtests by nesting level */
  const open = []
  const failures = []
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const indent = line.length - line.trimStart().length
    const level = Math.floor(indent / 4)
    const body = line.trimStart()
    const subtest = /^# Subtest: (.*)$/.exec(body)
    if (subtest) {
      open.length = level
      open[level] = { name: subtest[1], failuresBefore: failures.length }
      continue
    }
    const result = /^(not ok|ok) \d+ - (.*?)(?: # (?:time=|SKIP|TODO).*)?$/.exec(body)
    if (!result) continue
    const [, verdict, name] = result
    const closing = open.length > level && open[level].name === name ? open[level] : undefined
    if (closing) open.length = level
    // A subtest that failed with no failing assertion inside (a crash, a timeout) is listed itself.
    if (verdict !== 'not ok' || (closing && failures.length > closing.failuresBefore)) continue
    const path = [...open.slice(0, level).map((o) => o.name), name]
    failures.push({ path, diagnostic: diagnosticAfter(lines, i, indent) })
  }
  return failures
}

/** The first lines of the YAML block after line `at`, less its `source:` excerpt and `at:` location. */
function diagnosticAfter(lines, at, indent) {
  const diagnostic = []
  if (lines[at + 1]?.trim() !== '---') return diagnostic
  let skipped = false
  for (let j = at + 2; j < lines.length && lines[j].trim() !== '...'; j++) {
    const text = lines[j].slice(indent + 2)
    if (/^\S/.test(text)) skipped = text.startsWith('source:') || text.startsWith('at:')
    if (!skipped && diagnostic.length < DIAGNOSTIC_LINES) diagnostic.push(text)
  }
  return diagnostic
}

/**
 * The printed list of the failures.
 * @param {{ path: string[], diagnostic: string[] }[]} failures
 * @param {number} max at most this many are printed in full
 */
function formatFailures(failures, max) {
  if (failures.length === 0) return 'no failing assertion in the tap log'
  const out = [`${failures.length} failing assertion(s):`]
  for (const failure of failures.slice(0, max)) {
    out.push(`  not ok: ${failure.path.join(' › ')}`)
    for (const d of failure.diagnostic) out.push(`      ${d}`)
  }
  if (failures.length > max) out.push(`  … and ${failures.length - max} more (see the test log)`)
  return out.join('\n')
}

const [file, ...rest] = process.argv.slice(2)
if (!file) {
  console.error('usage: node scripts/tap-failures.mjs <tap log> [--max N]')
  process.exit(2)
}
const maxAt = rest.indexOf('--max')
const max = maxAt >= 0 ? Number(rest[maxAt + 1]) : DEFAULT_MAX
console.log(
  formatFailures(tapFailures(readFileSync(file, 'utf8')), Number.isFinite(max) && max > 0 ? max : DEFAULT_MAX),
)
