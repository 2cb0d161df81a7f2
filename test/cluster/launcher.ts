/**
 * Test helper: runs the built local-cluster launcher (`node dist/scripts/cluster.js`) on free ports
 * with its own data folder, collects its output, and reads the pids line it prints when ready
 * (BOSUN_CLUSTER_PIDS=1). Teardown SIGKILLs whatever is left (launcher and every group it reported).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { groupAlive, processAlive, signalGroup } from '../../scripts/lib/proc.js'
import { freePort, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'

export const REPO_ROOT = resolve(import.meta.dirname, '..', '..')
export const LAUNCHER = join(REPO_ROOT, 'dist', 'scripts', 'cluster.js')

export interface ExitStatus {
  code: number | null
  signal: NodeJS.Signals | null
}

/** The JSON of the `BOSUN_CLUSTER_PIDS …` line. */
export interface PidsLine {
  launcher: number
  watchdog: number
  api: string[]
  processes: Record<string, number>
}

export interface Launcher {
  readonly child: ChildProcess
  readonly home: string
  readonly cluster: string
  /** The ports handed to the launcher (BOSUN_*_PORT). */
  readonly ports: { zk: number; nats: number; natsMonitor: number; api: number }
  /** Every output line so far (stdout and stderr). */
  readonly lines: string[]
  /** The last `lines` joined, for assertion messages. */
  tail(n?: number): string
  /** Resolves with the first pids line (the cluster is ready). */
  ready(timeoutMs?: number): Promise<PidsLine>
  /** Resolves when the launcher has exited. */
  readonly exited: Promise<ExitStatus>
  /** Resolves when the launcher has exited; rejects (with its output) after `ms`. */
  exitedWithin(ms: number): Promise<ExitStatus>
  /** SIGKILL the launcher and every group it reported; remove the data folder. Idempotent. */
  destroy(): Promise<void>
}

/** Start the launcher with `args` (formation) and extra `env`; ports are free ports. */
export async function startLauncher(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Launcher> {
  if (!existsSync(LAUNCHER)) throw new Error(`${LAUNCHER} is missing: run \`npm run build\` first (npm test does)`)
  const home = mkdtempSync(join(tmpdir(), 'bosun-home-'))
  const cluster = uniqueName('lc')
  const ports = { zk: await freePort(), nats: await freePort(), natsMonitor: await freePort(), api: await freePort() }
  const child = spawn(process.execPath, [LAUNCHER, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      BOSUN_HOME: home,
      BOSUN_CLUSTER: cluster,
      BOSUN_CLUSTER_PIDS: '1',
      BOSUN_ZK_PORT: String(ports.zk),
      BOSUN_NATS_PORT: String(ports.nats),
      BOSUN_NATS_MONITOR_PORT: String(ports.natsMonitor),
      BOSUN_API_PORT: String(ports.api),
      NO_COLOR: '1',
      LOG_PRETTY: 'false',
      ...env,
    },
  })
  const lines: string[] = []
  let pids: PidsLine | undefined
  const collect = (stream: NodeJS.ReadableStream) => {
    let pending = ''
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      pending += chunk
      const parts = pending.split('\n')
      pending = parts.pop() ?? ''
      for (const line of parts) {
        lines.push(line)
        const m = /^BOSUN_CLUSTER_PIDS (\{.*\})$/.exec(line)
        if (m && pids === undefined) pids = JSON.parse(m[1]!) as PidsLine
      }
    })
  }
  collect(child.stdout)
  collect(child.stderr)
  const exited = new Promise<ExitStatus>((res) => child.once('exit', (code, signal) => res({ code, signal })))
  let destroyed = false
  const tail = (n = 60) => lines.slice(-n).join('\n')
  return {
    child,
    home,
    cluster,
    ports,
    lines,
    tail,
    async ready(timeoutMs = 180_000) {
      return waitFor(
        () => {
          if (child.exitCode !== null || child.signalCode !== null)
            throw new Error(`launcher exited with ${child.exitCode ?? child.signalCode} before ready:\n${tail()}`)
          return pids
        },
        { timeoutMs, intervalMs: 100, what: `local cluster ready (output so far:\n${tail(30)}\n)` },
      )
    },
    exited,
    async exitedWithin(ms) {
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`launcher did not exit within ${ms} ms:\n${tail()}`)), ms)
      })
      try {
        return await Promise.race([exited, timeout])
      } finally {
        clearTimeout(timer)
      }
    },
    async destroy() {
      if (destroyed) return
      destroyed = true
      if (child.pid !== undefined && processAlive(child.pid)) child.kill('SIGKILL')
      if (pids) for (const pgid of [pids.watchdog, ...Object.values(pids.processes)]) signalGroup(pgid, 'SIGKILL')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000).unref())])
      rmSync(home, { recursive: true, force: true })
    },
  }
}

/** Names (from `pids`) of processes or groups that still have a live member. */
export function survivors(pids: PidsLine): string[] {
  const out: string[] = []
  if (processAlive(pids.launcher)) out.push(`launcher ${pids.launcher}`)
  if (groupAlive(pids.watchdog)) out.push(`watchdog ${pids.watchdog}`)
  for (const [name, pgid] of Object.entries(pids.processes)) if (groupAlive(pgid)) out.push(`${name} (group ${pgid})`)
  return out
}
