/**
 * scripts/tap-failures.mjs, the list of failing assertions .ci/run prints before its last line: each
 * failing leaf assertion once with its path and diagnostic, a file that crashed with no assertion
 * listed itself, passing subtests not at all. Runs the script as CI does, on tap logs written here.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../../worker/executor/paths.js'

const script = join(PROJECT_ROOT, 'scripts', 'tap-failures.mjs')
const dir = mkdtempSync(join(tmpdir(), 'bosun-tap-failures-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

function failuresOf(log: string, ...args: string[]): string {
  const file = join(dir, `log-${Math.random().toString(36).slice(2)}.txt`)
  writeFileSync(file, log)
  const r = spawnSync(process.execPath, [script, file, ...args], { encoding: 'utf8', timeout: 20_000 })
  if (r.status !== 0) throw new Error(`tap-failures exited ${r.status}: ${r.stderr}`)
  return r.stdout
}

const nested = [
  'TAP version 14',
  '# Subtest: test/a.test.ts',
  '    # Subtest: outer',
  '        ok 1 - should be equal',
  '        # Subtest: inner',
  '            not ok 1 - one is two',
  '              ---',
  '              compare: ===',
  '              at:',
  '                fileName: test/a.test.ts',
  '              stack: |',
  '                Test.<anonymous> (test/a.test.ts:4:34)',
  '              source: |',
  "                t.equal(1, 2, 'one is two')",
  '              ...',
  '            ',
  '            ok 2 - should be equal',
  '            1..2',
  '        not ok 2 - inner # time=34.493ms',
  '          ---',
  '          at:',
  '            lineNumber: 4',
  '          ...',
  '        1..2',
  '    not ok 1 - outer # time=45.114ms',
  '    # Subtest: good',
  '        ok 1 - should be equal',
  '        1..1',
  '    ok 2 - good # time=1ms',
  '    1..2',
  'not ok 1 - test/a.test.ts # time=50ms',
  '# Subtest: test/b.test.ts',
  '    1..0 # no tests found',
  'not ok 2 - test/b.test.ts # time=2773.891ms',
  '  ---',
  '  exitCode: 1',
  '  ...',
  '# Subtest: test/c.test.ts',
  '    ok 1 - fine',
  '    1..1',
  'ok 3 - test/c.test.ts # time=1ms',
  '# { total: 5, pass: 3, fail: 2 }',
].join('\n')

t.test('each failing assertion once, with its path and its diagnostic', async (t) => {
  const out = failuresOf(nested)
  t.match(out, /^2 failing assertion\(s\):/)
  const first =
    /not ok: test\/a\.test\.ts › outer › inner › one is two\n {6}compare: ===\n {6}stack: \|\n {8}Test\.<anonymous> /
  t.match(out, first)
  t.notMatch(out, /source:|fileName|lineNumber/, 'the source excerpt and the location block are left out')
  t.notMatch(out, /› inner\n|› outer\n/, 'a subtest that failed because of its assertion is not listed again')
  t.notMatch(out, /good|c\.test/, 'passing tests are not listed')
})

t.test('a file that failed with no assertion (a crash) is listed itself', async (t) => {
  t.match(failuresOf(nested), /not ok: test\/b\.test\.ts\n {6}exitCode: 1/)
})

t.test('colours are ignored, --max bounds the list, a clean log says so', async (t) => {
  const coloured = nested.replace('not ok 1 - one is two', '\x1b[31mnot ok 1 - one is two\x1b[0m')
  t.match(failuresOf(coloured), /not ok: test\/a\.test\.ts › outer › inner › one is two/)
  const bounded = failuresOf(nested, '--max', '1')
  t.match(bounded, /one is two/)
  t.notMatch(bounded, /b\.test/)
  t.match(bounded, /… and 1 more \(see the test log\)/)
  t.match(failuresOf('TAP version 14\nok 1 - x\n'), /no failing assertion in the tap log/)
})
