/**
 * runner/v8-tuning.ts: a process that loads it optimizes a hot function after fewer calls than
 * Node's default (the warm-up a fresh boss or worker pays), a budget given on the command line wins,
 * and both long-running entry points load it before anything else. V8 is asked through
 * `%GetOptimizationStatus` in a child started with `--allow-natives-syntax`, optimizing on the main
 * thread (`--no-concurrent-recompilation`) so the count of calls is exact.
 */
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const TUNING = pathToFileURL(join(ROOT, 'dist', 'runner', 'v8-tuning.js')).href

/** Calls of a small hot function until V8 has optimized it, in a fresh process. */
function callsUntilOptimized(opts: { tuned: boolean; nodeFlags?: string[] }): number {
  const script = `
    ${opts.tuned ? `await import(${JSON.stringify(TUNING)})` : ''}
    const hot = new Function('a', 'let s = 0; for (let i = 0; i < 4; i++) s += a[i] * i; return s')
    const optimized = new Function('f', 'return (%GetOptimizationStatus(f) & 16) !== 0')
    const a = [1, 2, 3, 4]
    let calls = 0
    while (!optimized(hot) && calls < 1e6) { hot(a); calls++ }
    process.stdout.write(String(calls))`
  const out = execFileSync(
    process.execPath,
    [
      '--allow-natives-syntax',
      '--no-concurrent-recompilation',
      ...(opts.nodeFlags ?? []),
      '--input-type=module',
      '-e',
      script,
    ],
    { encoding: 'utf8' },
  )
  return Number(out)
}

t.test('a process that loads the tuning optimizes a hot function after far fewer calls', async (t) => {
  const plain = callsUntilOptimized({ tuned: false })
  const tuned = callsUntilOptimized({ tuned: true })
  t.ok(plain > 0 && plain < 1e6, `optimized without the tuning after ${plain} calls`)
  t.ok(tuned * 2 < plain, `with the tuning after ${tuned} calls (without: ${plain})`)
})

t.test('an --interrupt-budget on the command line is left alone, in either spelling', async (t) => {
  const plain = callsUntilOptimized({ tuned: false })
  t.equal(callsUntilOptimized({ tuned: true, nodeFlags: ['--interrupt-budget=67584'] }), plain)
  t.equal(callsUntilOptimized({ tuned: true, nodeFlags: ['--interrupt_budget=67584'] }), plain)
})

t.test('the API and the worker load the tuning before any other module', async (t) => {
  for (const main of ['api/main.ts', 'worker/main.ts']) {
    const firstImport = readFileSync(join(ROOT, main), 'utf8')
      .split('\n')
      .find((line) => line.startsWith('import '))
    t.equal(firstImport, "import '../runner/v8-tuning.js'", main)
  }
})
