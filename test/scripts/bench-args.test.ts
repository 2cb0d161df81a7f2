/**
 * The bench runner's arguments: `--help` prints the usage and starts nothing; an unknown flag or
 * benchmark is refused with exit 2 before any server starts (it used to run every benchmark, since
 * anything not a known flag was ignored). Runs the built CLI (`npm run build`).
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { PROJECT_ROOT } from '../../worker/executor/paths.js'

const cli = join(PROJECT_ROOT, 'dist', 'bench', 'run.js')
const run = (...args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 })

t.test('--help prints the usage and exits 0', async (t) => {
  const r = run('--help')
  t.equal(r.status, 0)
  t.match(r.stdout, /^usage: node dist\/bench\/run.js/)
  t.notMatch(r.stdout + r.stderr, /\[bench /, 'no benchmark started')
})

t.test('unknown flags and benchmarks are refused with exit 2', async (t) => {
  for (const args of [['--frobnicate'], ['e2e', '--bogus=1'], ['nonsense'], ['e2e', 'runtime']]) {
    const r = run(...args)
    t.equal(r.status, 2, args.join(' '))
    t.match(r.stderr, /usage:/)
    t.notMatch(r.stdout + r.stderr, /\[bench /, 'no benchmark started')
  }
})
