/**
 * The local-cluster launcher's supervision, with misbehaving stand-in processes
 * (test/cluster/fixtures) and the real ZooKeeper and nats-server it starts:
 * crash reporting, server restart, SIGTERM → SIGKILL escalation on whole process groups,
 * the watchdog when the launcher itself is SIGKILLed, and the data-folder lock.
 */
import { join } from 'node:path'
import t from 'tap'
import { processAlive } from '../../scripts/lib/proc.js'
import { waitFor } from '../helpers/wait.js'
import { startLauncher, survivors, type PidsLine } from './launcher.js'

const PROCFILE = join(import.meta.dirname, 'fixtures', 'Procfile')

/** Pids announced as `<mode> grandchild=<pid>` by the fixtures. */
function grandchildren(lines: string[]): number[] {
  return lines.flatMap((l) => {
    const m = /\| (?:stubborn|leaky) grandchild=(\d+)/.exec(l)
    return m ? [Number(m[1])] : []
  })
}

/** Latest pids line in the output (the launcher prints a new one after every (re)spawn once ready). */
function lastPids(lines: string[]): PidsLine | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /^BOSUN_CLUSTER_PIDS (\{.*\})$/.exec(lines[i]!)
    if (m) return JSON.parse(m[1]!) as PidsLine
  }
  return undefined
}

t.test('SIGTERM stops every group, escalating to SIGKILL; crashes are reported; servers restart', async (t) => {
  const l = await startLauncher(['api=1', 'stubborn=1', 'leaky=1', 'crasher=1'], {
    BOSUN_PROCFILE: PROCFILE,
    BOSUN_STOP_TIMEOUT_MS: '2000',
  })
  t.teardown(() => l.destroy())
  const pids = await l.ready()
  t.same(
    Object.keys(pids.processes)
      .filter((n) => n.startsWith('zookeeper') || n.startsWith('nats'))
      .sort(),
    ['nats', 'zookeeper'],
    'both servers run',
  )
  t.ok(pids.processes['stubborn.1'] && pids.processes['leaky.1'] && pids.processes['api.1'], 'Procfile processes run')
  t.match(l.lines.join('\n'), /api\.1\s+\| api listening on \d+ node-id=api-1/, 'api got PORT and BOSUN_NODE_ID')

  await waitFor(() => l.lines.some((x) => /crasher\.1 exited with code 3; not restarted/.test(x)), {
    timeoutMs: 30_000,
    what: 'crash report',
  })
  const res = await fetch(`${pids.api[0]}/readyz`)
  t.equal(res.status, 200, 'the rest keep running after a crash')

  // A server that dies is restarted (new pid) and serves again.
  const oldNats = pids.processes.nats!
  process.kill(oldNats, 'SIGKILL')
  const renewed = await waitFor(
    () => {
      const p = lastPids(l.lines)
      return p?.processes.nats !== undefined && p.processes.nats !== oldNats ? p : undefined
    },
    { timeoutMs: 30_000, what: 'nats restarted' },
  )
  t.match(l.lines.join('\n'), /nats was killed by SIGKILL; restarting/, 'server crash reported')
  t.ok(processAlive(renewed.processes.nats!), 'new nats process alive')

  const gcs = grandchildren(l.lines)
  t.equal(gcs.length, 2, 'both grandchildren announced')
  l.child.kill('SIGTERM')
  const exit = await l.exitedWithin(60_000)
  t.same(exit, { code: 0, signal: null }, 'clean exit')
  const out = l.lines.join('\n')
  t.match(out, /stubborn\.1\s+\| did not stop within 2 s, sending SIGKILL/, 'stubborn process was SIGKILLed')
  t.match(
    out,
    /leaky\.1\s+\| did not stop within 2 s, sending SIGKILL/,
    'leftover grandchild of a clean exit was SIGKILLed',
  )
  t.same(survivors(renewed), [], 'no process group left')
  t.same(
    gcs.filter((pid) => processAlive(pid)),
    [],
    'no grandchild left',
  )
})

t.test('a SIGKILLed launcher leaves nothing behind (watchdog); the data folder is locked while it runs', async (t) => {
  const l = await startLauncher(['api=1', 'stubborn=1', 'leaky=1', 'crasher=0'], { BOSUN_PROCFILE: PROCFILE })
  t.teardown(() => l.destroy())
  const pids = await l.ready()

  const second = await startLauncher(['api=1', 'stubborn=0', 'leaky=0', 'crasher=0'], {
    BOSUN_PROCFILE: PROCFILE,
    BOSUN_HOME: l.home,
  })
  t.teardown(() => second.destroy())
  const secondExit = await second.exited
  t.equal(secondExit.code, 1, 'a second launcher on the same data folder refuses to start')
  t.match(second.lines.join('\n'), /another local cluster \(pid \d+\) is using/)

  const gcs = grandchildren(l.lines)
  process.kill(pids.launcher, 'SIGKILL')
  await waitFor(() => survivors(pids).length === 0 && gcs.every((pid) => !processAlive(pid)), {
    timeoutMs: 20_000,
    what: 'every group gone after the launcher was SIGKILLed',
  }).catch(() => undefined)
  t.same(survivors(pids), [], 'no process group left')
  t.same(
    gcs.filter((pid) => processAlive(pid)),
    [],
    'no grandchild left',
  )
})
