/** Procfile/formation parsing, the shell wrapper, and the output prefixer of the local-cluster launcher. */
import { spawn } from 'node:child_process'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { Output, defaultColor } from '../../scripts/lib/output.js'
import { groupAlive, pollUntil, processAlive } from '../../scripts/lib/proc.js'
import { formatFormation, parseFormation, parseProcfile, shellArgs } from '../../scripts/lib/procfile.js'

t.test('parseProcfile reads name: command lines', async (t) => {
  const entries = parseProcfile(
    '# comment\n\napi: node dist/api/main.js\r\nworker:   node dist/worker/main.js --x=1:2\n',
  )
  t.same(entries, [
    { name: 'api', command: 'node dist/api/main.js' },
    { name: 'worker', command: 'node dist/worker/main.js --x=1:2' },
  ])
  t.throws(() => parseProcfile('api node x'), /line 1: expected "name: command"/)
  t.throws(() => parseProcfile('api: a\napi: b'), /line 2: duplicate process type "api"/)
  t.throws(() => parseProcfile('bad name: x'), /line 1/)
  t.throws(() => parseProcfile('api:'), /line 1/)
  t.throws(() => parseProcfile('# nothing\n'), /no processes/)
})

t.test('parseFormation: defaults, foreman and space-separated forms, all=N, errors', async (t) => {
  const entries = parseProcfile('api: a\nworker: w\nextra: e\n')
  const defaults = { api: 1, worker: 3 }
  t.same(
    [...parseFormation([], entries, defaults)],
    [
      ['api', 1],
      ['worker', 3],
      ['extra', 1],
    ],
  )
  t.same(
    [...parseFormation(['worker=5'], entries, defaults)],
    [
      ['api', 1],
      ['worker', 5],
      ['extra', 1],
    ],
  )
  t.same(
    [...parseFormation(['api=2,worker=0', 'extra=0'], entries, defaults)],
    [
      ['api', 2],
      ['worker', 0],
      ['extra', 0],
    ],
  )
  t.same(
    [...parseFormation(['all=2', 'api=1'], entries, defaults)],
    [
      ['api', 1],
      ['worker', 2],
      ['extra', 2],
    ],
  )
  t.equal(formatFormation(parseFormation(['worker=2'], entries, defaults)), 'api=1 worker=2 extra=1')
  t.throws(
    () => parseFormation(['web=1'], entries),
    /unknown process type "web" \(the Procfile has api, worker, extra\)/,
  )
  t.throws(() => parseFormation(['worker'], entries), /bad formation "worker"/)
  t.throws(() => parseFormation(['worker=-1'], entries), /bad formation/)
  t.throws(() => parseFormation(['worker=1000'], entries), /bad formation/)
})

t.test('shellArgs execs simple commands and leaves shell syntax to sh', async (t) => {
  t.same(shellArgs('node dist/api/main.js'), ['sh', ['-c', 'exec node dist/api/main.js']])
  t.same(shellArgs('FOO=1 node x.js'), ['sh', ['-c', 'exec FOO=1 node x.js']])
  t.same(shellArgs('exec node x.js'), ['sh', ['-c', 'exec node x.js']])
  t.same(shellArgs('npm run build && node x.js'), ['sh', ['-c', 'npm run build && node x.js']])
  t.same(shellArgs('node x.js | tee log'), ['sh', ['-c', 'node x.js | tee log']])

  // The exec'ed program is the process we spawned (its pid), not a shell waiting on it.
  // (A program other than node: tap's process-info hook re-spawns node children.)
  const [cmd, args] = shellArgs(`sh -c 'echo $$'`)
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  await new Promise((r) => child.once('close', r))
  t.equal(Number(out.trim()), child.pid)
})

t.test('Output prefixes lines, pads names, splits chunks, flushes a partial last line', async (t) => {
  const written: string[] = []
  const out = new Output({ color: false, out: { write: (s: string) => written.push(s) } })
  out.register('worker.10')
  out.line('api.1', 'hello\nworld')
  const stream = new PassThrough()
  out.pipe('worker.10', stream)
  stream.write('par')
  stream.write('tial\r\nsecond\nno newline')
  stream.end()
  await new Promise((r) => stream.once('end', r))
  await new Promise((r) => setImmediate(r))
  t.same(written.join('').split('\n').slice(0, -1), [
    'api.1     | hello',
    'api.1     | world',
    'worker.10 | partial',
    'worker.10 | second',
    'worker.10 | no newline',
  ])

  const coloured: string[] = []
  const c = new Output({ color: true, out: { write: (s: string) => coloured.push(s) } })
  c.line('api.1', 'x')
  c.line('api.1', 'oops', 'error')
  c.line('events', 'boss.elected', 'highlight')
  /* eslint-disable no-control-regex -- ANSI colour codes */
  t.match(coloured[0], /^\u001b\[\d+mapi\.1 \|\u001b\[0m x\n$/)
  t.match(coloured[1], /\u001b\[31moops\u001b\[0m/)
  t.match(coloured[2], /\u001b\[1;33mboss\.elected\u001b\[0m/, 'a highlighted line is bold yellow')
  /* eslint-enable no-control-regex */
  out.line('events', 'boss.elected', 'highlight')
  t.match(written.at(-1), /^events +\| >> boss\.elected\n$/, 'and marked with >> without colours')

  t.equal(defaultColor({ isTTY: true }, {}), true)
  t.equal(defaultColor({ isTTY: false }, {}), false)
  t.equal(defaultColor({ isTTY: true }, { NO_COLOR: '1' }), false)
  t.equal(defaultColor({ isTTY: false }, { FORCE_COLOR: '1' }), true)
})

t.test('groupAlive sees grandchildren and ignores zombies', async (t) => {
  // sh leads a new group and starts a grandchild that outlives it.
  const child = spawn('sh', ['-c', 'sleep 30 & echo $!'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  await new Promise((r) => child.once('exit', r))
  const grandchild = Number(out.trim())
  t.teardown(() => {
    try {
      process.kill(grandchild, 'SIGKILL')
    } catch {
      /* gone */
    }
  })
  t.ok(processAlive(grandchild))
  t.equal(processAlive(child.pid!), false, 'the exited leader counts as gone')
  t.equal(groupAlive(child.pid!), true, 'the group lives on in the grandchild')
  process.kill(-child.pid!, 'SIGKILL')
  t.ok(await pollUntil(() => !groupAlive(child.pid!), 5000), 'group gone (a zombie grandchild does not count)')
})
