/**
 * The Redis that BullMQ runs on in the side-by-side benchmark: Debian's `redis-server` (installed with
 * apt-get when missing and this process runs as root, as scripts/ensure-servers.mjs does for ZooKeeper
 * and NATS), one fresh server per BullMQ run on a free loopback port and a fresh data directory, with
 * the durability BullMQ users are told to run: AOF on, `appendfsync everysec`, no RDB snapshots.
 * A watchdog kills the server if the benchmark dies; close() stops it (SIGTERM) and removes its data.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from '../../test/helpers/servers.js'
import { waitFor } from '../../test/helpers/wait.js'
import { progress } from '../lib/report.js'

export interface RedisServer {
  readonly port: number
  readonly pid: number
  /** `redis-server --version`. */
  readonly version: string
  /** The durability settings it runs with (recorded in the results). */
  readonly settings: string
  /** INFO fields (memory, persistence) as `key → value`. */
  info(): Record<string, string>
  /** SIGTERM (Redis fsyncs the AOF and exits), then remove the data directory. Idempotent. */
  close(): Promise<void>
}

/** The absolute path of `cmd` on PATH, or undefined. */
function locate(cmd: string): string | undefined {
  const res = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' })
  return res.status === 0 ? res.stdout.trim() || undefined : undefined
}
const has = (cmd: string) => locate(cmd) !== undefined

/** Install `redis-server` (Debian package; it also brings `redis-cli`) when it is missing. */
export function ensureRedis(): void {
  if (has('redis-server') && has('redis-cli')) return
  const root = typeof process.getuid === 'function' && process.getuid() === 0
  const command = 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server'
  if (!root || !has('apt-get'))
    throw new Error(`redis-server is missing; install it with: ${root ? '' : 'sudo '}sh -c '${command}'`)
  progress('redis-server is missing: installing it (apt-get)')
  const res = spawnSync('sh', ['-c', command], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  if (res.status !== 0 || !has('redis-server')) throw new Error(`\`${command}\` failed (status ${res.status})`)
}

function cli(port: number, ...args: string[]): string {
  const bin = locate('redis-cli') ?? 'redis-cli'
  return execFileSync(bin, ['-p', String(port), ...args], {
    encoding: 'utf8',
    timeout: 5000,
    stdio: ['ignore', 'pipe', 'ignore'],
  }).trim()
}

const exited = (c: ChildProcess) =>
  c.exitCode !== null || c.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => c.once('exit', () => r()))

/** Start a fresh redis-server; resolves once `redis-cli ping` answers PONG. */
export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-cmp-redis-'))
  const port = await freePort()
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '']
  const durability = ['--appendonly', 'yes', '--appendfsync', 'everysec']
  const bin = locate('redis-server') ?? 'redis-server'
  const child = spawn(bin, [...args, ...durability, '--daemonize', 'no', '--logfile', join(dir, 'log')], {
    stdio: 'ignore',
  })
  const watchdog = spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 0.5; done; ` +
        `kill -9 ${child.pid} 2>/dev/null`,
    ],
    { stdio: 'ignore', detached: true },
  )
  watchdog.unref()
  // On Ctrl-C test/helpers/servers.ts exits the process, which runs this.
  const kill = () => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', kill)
  let closing: Promise<void> | undefined
  const close = () =>
    (closing ??= (async () => {
      process.off('exit', kill)
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
      await exited(child)
      clearTimeout(timer)
      rmSync(dir, { recursive: true, force: true })
    })())
  try {
    await waitFor(
      () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`)
        try {
          return cli(port, 'ping') === 'PONG'
        } catch {
          return false
        }
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'redis-server ready' },
    )
  } catch (err) {
    await close()
    throw err
  }
  return {
    port,
    pid: child.pid!,
    version: execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim(),
    settings: durability.join(' ') + ' --save ""',
    info() {
      const out: Record<string, string> = {}
      for (const line of cli(port, 'info').split(/\r?\n/)) {
        const i = line.indexOf(':')
        if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1)
      }
      return out
    },
    close,
  }
}
