/**
 * The fault-table renderer refuses what it cannot vouch for (failed runs, missing fields, mixed
 * commits, run counts other than 3), shows unexplained duplicates in their own column, renders the
 * same README table for any passing report of a commit, and --check fails on a README that differs.
 */
import t from 'tap'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  TABLE_END,
  TABLE_START,
  main,
  readReport,
  readmeTable,
  renderMeasured,
  renderTable,
  withTable,
  type ReportRow,
} from '../../scripts/fault-table.js'

const COMMIT = 'a'.repeat(40)

function row(over: Partial<ReportRow> = {}): ReportRow {
  return {
    v: 1,
    fault: 'kill -9 of the boss',
    run: 1,
    runId: 'ci-1',
    commit: COMMIT,
    dirty: false,
    passed: true,
    failed: [],
    submitted: 2000,
    acknowledged: 2000,
    succeeded: 2000,
    lost: 0,
    twiceExplained: 0,
    twiceUnexplained: 0,
    explainedAs: '',
    bound: 'new boss dispatching ≤ 5000 ms after the kill',
    measuredMs: 2100,
    notes: 'n',
    at: '2026-12-01T00:00:00.000Z',
    ...over,
  }
}

const three = (over: Partial<ReportRow> = {}) => [1, 2, 3].map((run) => row({ run, ...over }))
const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n'

t.test('three passing runs render one row with sums and the asserted bound', async (t) => {
  const { rows, errors } = readReport(jsonl(three()))
  t.same(errors, [])
  const table = renderTable(rows).split('\n')
  t.equal(table.length, 3)
  t.equal(table[2], '| kill -9 of the boss | 3/3 | 6,000 | 0 | 0 | 0 | new boss dispatching ≤ 5000 ms after the kill |')
})

t.test('a failed run is refused, even one whose fields look fine', async (t) => {
  // The case that once printed "0 lost" next to 5,990 of 6,000 succeeded.
  const bad = row({ run: 3, passed: false, failed: ['no acknowledged job lost'], succeeded: 1990, lost: 10 })
  const { errors } = readReport(jsonl([row({ run: 1 }), row({ run: 2 }), bad]))
  t.match(errors.join('\n'), /kill -9 of the boss run 3 failed: no acknowledged job lost/)
  const noNames = readReport(jsonl([row({ run: 1 }), row({ run: 2 }), row({ run: 3, passed: false })]))
  t.match(noNames.errors.join('\n'), /run 3 failed/)
})

t.test('a missing or malformed field is refused, never read as 0', async (t) => {
  const { lost: _lost, ...noLost } = row({ run: 2 })
  const r1 = readReport(jsonl([row({ run: 1 }), noLost, row({ run: 3 })]))
  t.match(r1.errors.join('\n'), /line 2: missing or malformed lost/)
  const r2 = readReport(jsonl([row({ run: 1 }), { ...row({ run: 2 }), succeeded: null }, row({ run: 3 })]))
  t.match(r2.errors.join('\n'), /malformed succeeded/)
  const r3 = readReport(jsonl([row({ run: 1 }), { ...row({ run: 2 }), commit: '' }, row({ run: 3 })]))
  t.match(r3.errors.join('\n'), /malformed commit/)
  t.match(readReport('{not json\n').errors.join('\n'), /line 1: not JSON/)
  t.match(readReport('').errors.join('\n'), /no rows/)
  const inconsistent = readReport(jsonl(three({ succeeded: 1990 })))
  t.match(inconsistent.errors.join('\n'), /acknowledged ≠ succeeded \+ lost/)
})

t.test('rows of two commits are refused', async (t) => {
  const { errors } = readReport(jsonl([row({ run: 1 }), row({ run: 2 }), row({ run: 3, commit: 'b'.repeat(40) })]))
  t.match(errors.join('\n'), /rows of 2 commits/)
})

t.test('a fault needs exactly runs 1, 2 and 3', async (t) => {
  t.match(readReport(jsonl([row({ run: 1 }), row({ run: 2 })])).errors.join('\n'), /runs 1,2, need exactly 1,2,3/)
  t.match(readReport(jsonl([...three(), row({ run: 3 })])).errors.join('\n'), /runs 1,2,3,3/)
  t.match(readReport(jsonl([row({ run: 1 }), row({ run: 2 }), row({ run: 4 })])).errors.join('\n'), /malformed run/)
})

t.test("duplicates: explained ones by the fault's words, unexplained ones counted in their own column", async (t) => {
  const explainedAs = "the victim's unfinished jobs"
  const killed = [1, 2, 3].map((run) =>
    row({ fault: 'kill -9 of a worker', run, twiceExplained: 5 + run, explainedAs }),
  )
  const unexplained = three({ fault: 'zz', twiceUnexplained: 2 })
  const { rows, errors } = readReport(jsonl([...killed, ...unexplained]))
  t.same(errors, [])
  const lines = renderTable(rows).split('\n')
  t.match(lines[2], `| kill -9 of a worker | 3/3 | 6,000 | 0 | ${explainedAs} | 0 |`)
  t.match(lines[3], '| zz | 3/3 | 6,000 | 0 | 0 | 6 |')
  t.match(renderMeasured(rows), /\| kill -9 of a worker \| 6,000 \| 6,000 \| 6 \/ 7 \/ 8 \|/)
})

t.test('the README table does not depend on what varies between passing runs', async (t) => {
  const a = readReport(jsonl(three())).rows
  const b = readReport(
    jsonl(three({ submitted: 2417, measuredMs: 3333, notes: 'other', runId: 'ci-2', at: '2026-12-02T00:00:00Z' })),
  ).rows
  t.equal(renderTable(a), renderTable(b))
  t.not(renderMeasured(a), renderMeasured(b))
})

t.test('--check passes on the README holding this table and fails on any other', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fault-table-'))
  const report = join(dir, 'report.jsonl')
  writeFileSync(report, jsonl(three()))
  const readme = join(dir, 'README.md')
  writeFileSync(readme, `# x\n\n${TABLE_START}\nold table\n${TABLE_END}\n\nmore\n`)
  const log = console.log
  const error = console.error
  const said: string[] = []
  console.log = (...a: unknown[]) => void said.push(a.join(' '))
  console.error = (...a: unknown[]) => void said.push(a.join(' '))
  try {
    t.equal(main([report, '--check', readme]), 1, 'a stale README table fails the check')
    t.equal(main([report, '--write', readme]), 0)
    t.equal(readmeTable(readFileSync(readme, 'utf8')), renderTable(readReport(jsonl(three())).rows))
    t.match(readFileSync(readme, 'utf8'), /\n\nmore\n$/, 'the rest of README is kept')
    t.equal(main([report, '--check', readme, '--out', join(dir, 't.md'), '--measured', join(dir, 'm.md')]), 0)
    t.match(readFileSync(join(dir, 'm.md'), 'utf8'), /Notes per run/)
    writeFileSync(report, jsonl([row({ run: 1 }), row({ run: 2 })]))
    t.equal(main([report, '--check', readme]), 1, 'a refused report fails')
  } finally {
    console.log = log
    console.error = error
  }
  t.throws(() => withTable('no markers', 'x'))
})
