/**
 * The `bosun` CLI (cli/main.ts, built) against a real cluster: submit with --wait, get, jobs, cancel,
 * cluster, cluster events, leadership, `--json` for scripts; a follow that prints events as they
 * happen; clear messages and exit codes for a refused connection, a 401 (a stand-in server: the
 * test cluster runs without tokens) and a 404, and bad usage.
 */
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../../worker/executor/paths.js'
import { startNats, startZooKeeper, uniqueName, freePort } from '../helpers/servers.js'
import { TestCluster, e2eFunctionsDir } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

const CLI = join(PROJECT_ROOT, 'dist', 'cli', 'main.js')
const zk = await startZooKeeper()
const nats = await startNats()
const c = new TestCluster({
  zk,
  nats,
  cluster: uniqueName('cli'),
  workers: 2,
  functionsDir: e2eFunctionsDir(),
  sessionTimeoutMs: 2000,
})
t.teardown(async () => {
  await c.close()
  await nats.close()
  await zk.close()
})
await c.start()

function bosun(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, BOSUN_URL: c.apiUrl, BOSUN_TOKEN: '', ...env },
  })
  return { code: r.status, out: r.stdout }
}

/** As bosun(), without blocking this process (a server in this process must answer the CLI). */
function bosunAsync(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, BOSUN_TOKEN: '', ...env } })
  let out = ''
  child.stdout.on('data', (d) => (out += String(d)))
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, out })))
}

t.test('submit --wait, get, jobs, cancel, in human form and --json', async (t) => {
  const done = bosun(['submit', 'echo', '--payload', '{"hello":"cli"}', '--wait', '10000'])
  t.equal(done.code, 0, done.out)
  t.match(done.out, /echo {2}succeeded/)
  t.match(done.out, /result {"hello":"cli"}/)
  const json = bosun(['submit', 'echo', '--payload', '[1,2]', '--wait', '10000', '--json'])
  const job = JSON.parse(json.out)
  t.same([job.state, job.result], ['succeeded', [1, 2]])
  const got = JSON.parse(bosun(['get', job.id, '--json']).out)
  t.equal(got.id, job.id)
  const list = bosun(['jobs', '--state', 'succeeded', '--limit', '5'])
  t.match(list.out, /^ID +FUNCTION +STATE/)
  t.match(list.out, job.id)
  const slow = JSON.parse(bosun(['submit', 'sleep', '--payload', '{"ms":30000}', '--json']).out)
  const cancelled = bosun(['cancel', slow.id, '--json'])
  t.equal(cancelled.code, 0)
  await waitFor(async () => ((await c.get(`/jobs/${slow.id}`)).body.state === 'cancelled' ? true : undefined))
})

t.test('cluster, leadership and cluster events', async (t) => {
  const cl = bosun(['cluster'])
  t.equal(cl.code, 0)
  t.match(cl.out, /^boss w\d+ .* epoch \d+ {2}for /)
  t.match(cl.out, /WORKER +HOST +PID +RUNNING/)
  const state = JSON.parse(bosun(['cluster', '--json']).out)
  const terms = await waitFor(async () => {
    const r = JSON.parse(bosun(['leadership', '--json']).out)
    return r.terms.length > 0 && r.terms[0].dispatchingAt ? r.terms : undefined
  })
  t.equal(terms[0].epoch, state.boss.epoch)
  const table = bosun(['leadership'])
  t.match(table.out, /^EPOCH +BOSS +START +END +ENDED +AFTER +GAP BEFORE/)
  t.match(table.out, new RegExp(`\\b${state.boss.id}\\b`))
  const evs = bosun(['cluster', 'events', '--type', 'boss.elected'])
  t.match(evs.out, /boss\.elected +epoch \d+ {2}w\d+/)
})

t.test('cluster events --follow prints events as they happen', async (t) => {
  const child = spawn(process.execPath, [CLI, 'cluster', 'events', '--follow'], {
    env: { ...process.env, BOSUN_URL: c.apiUrl, BOSUN_TOKEN: '' },
  })
  let out = ''
  child.stdout.on('data', (d) => (out += String(d)))
  t.teardown(() => child.kill('SIGKILL'))
  await new Promise((r) => setTimeout(r, 1000))
  const joiner = c.addWorker()
  await waitFor(() => (out.includes(`worker.joined`) && out.includes(joiner.name) ? true : undefined), {
    timeoutMs: 20_000,
  })
  child.kill('SIGINT')
  const code = await new Promise((r) => child.once('exit', (c) => r(c)))
  t.equal(code, 0, 'Ctrl-C ends a follow with exit 0')
})

t.test('top: the boss, the workers, the load and the latest events, redrawn until Ctrl-C', async (t) => {
  const child = spawn(process.execPath, [CLI, 'top'], { env: { ...process.env, BOSUN_URL: c.apiUrl, BOSUN_TOKEN: '' } })
  let out = ''
  child.stdout.on('data', (d) => (out += String(d)))
  t.teardown(() => child.kill('SIGKILL'))
  const jobs = Array.from({ length: 50 }, () => ({ function: 'echo', payload: 1 }))
  t.equal((await c.post('/jobs/batch', { jobs })).status, 202)
  const screen = await waitFor(
    () => {
      const last = out.split('\x1b[2J\x1b[H').at(-1) ?? ''
      return /throughput [\d.]+ jobs\/s/.test(last) && /finished this term [1-9]/.test(last) ? last : undefined
    },
    { timeoutMs: 20_000, what: `top's load line with a throughput: ${out.slice(-400)}` },
  )
  const state = await c.clusterState()
  t.match(screen, new RegExp(`boss ${state.boss!.id} .* epoch ${state.boss!.epoch}`), 'the boss')
  t.match(screen, /WORKER +HOST +PID +RUNNING +CAPACITY +WAITING +FUNCTIONS/, 'the workers')
  t.match(screen, /queued \d+ {2}running \d+ {2}finished this term \d+ {2}throughput/, 'the load')
  t.match(screen, /latest events\n.*boss\.(elected|active)/, 'the latest events')
  child.kill('SIGINT')
  t.equal(await new Promise((r) => child.once('exit', (c) => r(c))), 0, 'Ctrl-C ends it with exit 0')
})

t.test('errors: unreachable, 401, 404, bad usage — a clear message and an exit code', async (t) => {
  const port = await freePort()
  const down = bosun(['cluster'], { BOSUN_URL: `http://127.0.0.1:${port}` })
  t.equal(down.code, 3)
  t.match(down.out, /cannot reach the bosun API at http:\/\/127\.0\.0\.1:\d+ \(ECONNREFUSED\)/)
  // An API that wants a token (the error shape of api/auth.ts), on a plain local server.
  const guarded = createServer((req, res) => {
    const ok = req.headers.authorization === 'Bearer right'
    res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' })
    res.end(ok ? '{"boss":null,"workers":[]}' : '{"statusCode":401,"code":"BOSUN_ERR_UNAUTHORIZED","message":"no"}')
  })
  await new Promise<void>((r) => guarded.listen(0, '127.0.0.1', r))
  t.teardown(() => guarded.close())
  const guardedUrl = `http://127.0.0.1:${(guarded.address() as AddressInfo).port}`
  const noToken = await bosunAsync(['cluster'], { BOSUN_URL: guardedUrl })
  t.equal(noToken.code, 1)
  t.match(noToken.out, /401 unauthorized: set BOSUN_TOKEN/)
  const withToken = await bosunAsync(['cluster'], { BOSUN_URL: guardedUrl, BOSUN_TOKEN: 'right' })
  t.equal(withToken.code, 0, 'the token is sent as a bearer token')
  t.match(withToken.out, /^boss: none elected/)
  const missing = bosun(['get', '01ARZ3NDEKTSV4RRFFQ69G5FAV-000'])
  t.equal(missing.code, 1)
  t.match(missing.out, /^bosun: 404 not found/)
  for (const args of [['frobnicate'], ['get'], ['submit'], ['jobs', '--bogus'], ['submit', 'echo', '--payload', '{']]) {
    const r = bosun(args)
    t.equal(r.code, 2, args.join(' '))
  }
  const help = bosun(['--help'])
  t.equal(help.code, 0)
  t.match(help.out, /^usage: bosun <command>/)
})
