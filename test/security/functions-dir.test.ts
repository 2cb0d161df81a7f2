/**
 * What a worker will run: only files inside FUNCTIONS_DIR whose names match the function-name
 * pattern. A symbolic link escaping the folder, files with bad names, folders, other extensions and
 * files in subfolders are never loaded — every one of them would write a marker file the moment it
 * is imported, and none may appear — and submitting their names answers 400/404, even when a
 * dispatch is forged directly on NATS. Payloads are data, never code: echo returns them verbatim.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as natsConnect } from '@nats-io/transport-node'
import t from 'tap'
import { TestCluster } from '../helpers/processes.js'
import { startNats, startZooKeeper, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import {
  deadProcesses,
  healthProblem,
  hostileFunctionsDir,
  SESSION_TIMEOUT_MS,
  startCluster,
  warnings,
} from '../hostile/helpers.js'

const markers = mkdtempSync(join(tmpdir(), 'bosun-markers-'))
const outside = mkdtempSync(join(tmpdir(), 'bosun-outside-'))
const dir = hostileFunctionsDir()

/** A module that leaves a marker file when imported and when run. */
function evil(tag: string): string {
  const file = JSON.stringify(join(markers, tag))
  return (
    `import { writeFileSync } from 'node:fs'\nwriteFileSync(${file} + '.imported', 'x')\n` +
    `export default async () => { writeFileSync(${file} + '.ran', 'x'); return 'EVIL' }\n`
  )
}

writeFileSync(join(outside, 'evil.mjs'), evil('outside'))
writeFileSync(join(outside, 'escape-target.mjs'), evil('escape-target'))
symlinkSync(join(outside, 'escape-target.mjs'), join(dir, 'escape.mjs'))
symlinkSync('../' + outside.split('/').pop() + '/evil.mjs', join(dir, 'relative-escape.mjs'))
symlinkSync(join(dir, 'echo.mjs'), join(dir, 'alias.mjs'))
symlinkSync(outside, join(dir, 'dirlink.mjs'))
symlinkSync(join(outside, 'nowhere.mjs'), join(dir, 'broken.mjs'))
const BAD_NAMES = ['Evil', '1evil', '-evil', 'ev il', 'evil.', '.hidden', 'a'.repeat(65), 'évil', 'evil$', 'EVIL']
for (const n of BAD_NAMES) writeFileSync(join(dir, `${n}.mjs`), evil(`badname-${Buffer.from(n).toString('hex')}`))
for (const ext of ['cjs', 'ts', 'json', 'mjs.bak', 'node'])
  writeFileSync(join(dir, `other-ext.${ext}`), evil(`ext-${ext}`))
mkdirSync(join(dir, 'sub'))
writeFileSync(join(dir, 'sub', 'inner.mjs'), evil('inner'))
mkdirSync(join(dir, 'folder.mjs'))
writeFileSync(join(dir, 'folder.mjs', 'index.mjs'), evil('folder-index'))

const zk = await startZooKeeper()
const nats = await startNats()
const name = uniqueName('fdir')
const cluster = new TestCluster({
  sessionTimeoutMs: SESSION_TIMEOUT_MS,
  zk,
  nats,
  cluster: name,
  workers: 2,
  functionsDir: dir,
})
const nc = await natsConnect({ servers: nats.url })
t.teardown(async () => {
  await nc.close().catch(() => undefined)
  await cluster.close()
  await nats.close()
  await zk.close()
})
await startCluster(cluster)

const markersNow = () => readdirSync(markers)

t.test('workers advertise exactly the valid functions inside the folder and log what they skipped', async (t) => {
  const state = await cluster.clusterState()
  const expected = [
    'alias',
    'bigint',
    'busyloop',
    'cyclic',
    'echo',
    'exit',
    'fail',
    'huge',
    'noop',
    'sleep',
    'throw-value',
  ]
  for (const w of state.workers)
    t.same([...w.functions].sort(), expected, `${w.id} advertises only valid, contained functions`)
  await waitFor(() => warnings(cluster, /function file ignored/).length > 0, {
    timeoutMs: 10_000,
    what: 'skip warnings',
  })
  const skipped = warnings(cluster, /function file ignored/).map((l) => String(l.file))
  for (const f of ['escape.mjs', 'relative-escape.mjs', 'dirlink.mjs', 'broken.mjs', 'Evil.mjs', 'folder.mjs'])
    t.ok(skipped.includes(f), `${f} skipped with a warning`)
  t.same(markersNow(), [], 'nothing outside the rules was even imported')
})

t.test('submitting a name that is not a loaded function answers 400 or 404 and runs nothing', async (t) => {
  const names = [
    'escape',
    'relative-escape',
    'dirlink',
    'broken',
    'inner',
    'sub/inner',
    'folder',
    'other-ext',
    'evil',
    'outside',
    '../evil',
    `..${'/'}${outside.split('/').pop()}/evil`,
    outside + '/evil.mjs',
    'escape.mjs',
    './echo',
    'echo.mjs',
    ...BAD_NAMES,
  ]
  const wrong: string[] = []
  for (const fn of names) {
    const one = await cluster.post('/jobs', { function: fn, payload: null })
    const batch = await cluster.post('/jobs/batch', { jobs: [{ function: 'echo' }, { function: fn }] })
    for (const [route, r] of [
      ['POST /jobs', one],
      ['POST /jobs/batch', batch],
    ] as const) {
      const expected = r.status === 404 ? 'BOSUN_ERR_UNKNOWN_FUNCTION' : 'BOSUN_ERR_VALIDATION'
      if (!(r.status === 400 || r.status === 404) || r.body?.code !== expected)
        wrong.push(`${route} ${JSON.stringify(fn)} → ${r.status} ${r.body?.code}`)
    }
  }
  t.same(wrong, [], 'every such name is refused with 400 (bad name) or 404 (unknown function)')
  const alias = await cluster.post('/jobs?wait=10000', { function: 'alias', payload: 'via a link inside the folder' })
  t.equal(alias.body?.result, 'via a link inside the folder', 'a link that stays inside the folder works')
  t.same(markersNow(), [], 'no marker: nothing ran')
})

t.test('a dispatch forged on NATS with such names is refused by the worker and runs nothing', async (t) => {
  const state = await cluster.clusterState()
  const epoch = state.boss!.epoch
  const fns = [
    'escape',
    'evil',
    '../evil',
    join(outside, 'evil.mjs'),
    `file://${join(outside, 'evil.mjs')}`,
    'sub/inner',
    'Evil',
    'constructor',
    '__proto__',
    'toString',
  ]
  const jobs = fns.map((fn, i) => ({
    id: `forged${i}`,
    function: fn,
    attempts: 1,
    maxAttempts: 1,
    payload: null,
    timeoutMs: 5000,
    state: 'running',
    createdAt: new Date().toISOString(),
  }))
  for (const w of state.workers) {
    const reply = await nc.request(
      `bosun.${name}.proc.${w.id}`,
      JSON.stringify({ v: 1, type: 'worker.dispatch', from: 'bosun.x.proc.stranger', epoch, body: { epoch, jobs } }),
      { timeout: 5000 },
    )
    const body = JSON.parse(new TextDecoder().decode(reply.data))
    t.equal(body.ok, true, `${w.id} answered the dispatch`)
    t.same(
      body.body?.answers?.map((a: { accepted: boolean }) => a.accepted),
      fns.map(() => false),
      `${w.id} refused every forged job`,
    )
    t.ok(
      body.body?.answers?.every((a: { reason?: string }) => a.reason === 'unknown-function'),
      'as unknown functions',
    )
  }
  t.same(markersNow(), [], 'no marker: nothing was imported or ran')
})

t.test('payloads are never evaluated: echo returns code-looking payloads verbatim', async (t) => {
  const m = join(markers, 'payload')
  const payloads: unknown[] = [
    `require('fs').writeFileSync(${JSON.stringify(m)}, 'x')`,
    `import('node:fs').then((fs) => fs.writeFileSync(${JSON.stringify(m)}, 'x'))`,
    '${process.exit(1)}',
    '`${process.kill(process.pid)}`',
    '() => process.exit(1)',
    '</script><script>alert(1)</script>',
    "'; DROP TABLE jobs; --",
    { $where: 'sleep(10000)', toString: 'function () { process.exit(1) }', valueOf: 'x', then: 'process.exit(1)' },
    { constructor: 'Function', prototype: { x: 1 } },
    { __lookupGetter__: 'x', hasOwnProperty: 'nope', toJSON: 'not a function' },
    ['\u0000', '\u2028\u2029', '\ud83d\ude00', '\\u0000'],
  ]
  const wrong: number[] = []
  for (const [i, payload] of payloads.entries()) {
    const r = await cluster.post('/jobs?wait=10000', { function: 'echo', payload })
    // Compared as JSON text (tap's deep equality would call a payload's own `hasOwnProperty` key).
    if (
      r.body?.state !== 'succeeded' ||
      JSON.stringify(r.body?.result) !== JSON.stringify(payload) ||
      JSON.stringify(r.body?.payload) !== JSON.stringify(payload)
    )
      wrong.push(i)
  }
  // Indexes, not the payloads: U+2028 in a test name would break the TAP stream.
  t.same(wrong, [], `all ${payloads.length} code-looking payloads were stored and echoed verbatim`)
  t.notOk(existsSync(m), 'no payload was executed')
  t.same(deadProcesses(cluster), [], 'no process exited')
  t.equal(await healthProblem(cluster), undefined)
})
