/**
 * Process supervisor: starts each process in its own process group, shows its output through the
 * prefixer (or appends it to a log file), reports exits, restarts the ones whose policy says so,
 * and stops them with SIGTERM → (timeout) → SIGKILL on the whole group, so nothing is orphaned.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import type { Output } from './output.js'
import { groupAlive, pollUntil, signalGroup } from './proc.js'

/** `never`: report the exit and leave it down. `always`: restart after a backoff. */
export type RestartPolicy = 'never' | 'always'

export type ProcessState = 'running' | 'backoff' | 'stopping' | 'exited'

export interface ProcessSpec {
  /** Display name and key, e.g. `worker.2`. */
  readonly name: string
  readonly command: string
  readonly args: readonly string[]
  readonly cwd: string
  readonly env: NodeJS.ProcessEnv
  readonly restart: RestartPolicy
  /** Append output to this file instead of showing it prefixed. */
  readonly logFile?: string
  /** Show the prefix dimmed (servers). */
  readonly dim?: boolean
}

/** How a process ended: exit code or signal. */
export interface ExitInfo {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface SupervisorEvents {
  /** A process ended while nobody asked it to stop. */
  crash: [name: string, exit: ExitInfo, willRestart: boolean]
  /** A process group was started or restarted (pids changed). */
  spawn: [name: string, pid: number]
}

const RESTART_BACKOFF_MS = [500, 1000, 2000, 5000, 10_000] as const

/** One supervised process (its group id is its pid). */
export class Supervised {
  state: ProcessState = 'running'
  child: ChildProcess | undefined
  lastExit: ExitInfo | undefined
  private restartTimer: NodeJS.Timeout | undefined
  private restarts = 0
  private stopping: Promise<void> | undefined

  constructor(
    readonly spec: ProcessSpec,
    private readonly owner: Supervisor,
  ) {}

  /** Pid of the group leader (= process group id) while running. */
  get pid(): number | undefined {
    return this.state === 'exited' || this.state === 'backoff' ? undefined : this.child?.pid
  }

  /** Start (or restart) the process. */
  launch(): void {
    const { spec } = this
    const fd = spec.logFile !== undefined ? openSync(spec.logFile, 'a') : undefined
    const child = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      detached: true,
      stdio: ['ignore', fd ?? 'pipe', fd ?? 'pipe'],
    })
    if (fd !== undefined) closeSync(fd)
    this.child = child
    this.state = 'running'
    if (child.stdout) this.owner.output.pipe(spec.name, child.stdout)
    if (child.stderr) this.owner.output.pipe(spec.name, child.stderr)
    child.on('error', (err) => this.owner.output.line(spec.name, `cannot start: ${err.message}`, 'error'))
    child.once('exit', (code, signal) => this.onExit(child, { code, signal }))
    if (child.pid !== undefined) this.owner.emit('spawn', spec.name, child.pid)
  }

  private onExit(child: ChildProcess, exit: ExitInfo): void {
    if (child !== this.child) return
    this.lastExit = exit
    if (this.state === 'stopping') return
    // Leftover group members (grandchildren) of a crashed process must not linger.
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL')
    const willRestart = this.spec.restart === 'always'
    this.state = willRestart ? 'backoff' : 'exited'
    this.owner.emit('crash', this.spec.name, exit, willRestart)
    if (willRestart) {
      const delay = RESTART_BACKOFF_MS[Math.min(this.restarts, RESTART_BACKOFF_MS.length - 1)]!
      this.restarts++
      this.restartTimer = setTimeout(() => this.launch(), delay)
    }
  }

  /** SIGTERM the group, SIGKILL it after `timeoutMs`; resolves when no member is left. Idempotent. */
  stop(timeoutMs: number): Promise<void> {
    this.stopping ??= this.doStop(timeoutMs)
    return this.stopping
  }

  private async doStop(timeoutMs: number): Promise<void> {
    clearTimeout(this.restartTimer)
    const wasRunning = this.state === 'running'
    this.state = 'stopping'
    const child = this.child
    const pgid = child?.pid
    if (child === undefined || pgid === undefined) return void (this.state = 'exited')
    const gone = () => (!wasRunning || child.exitCode !== null || child.signalCode !== null) && !groupAlive(pgid)
    signalGroup(pgid, 'SIGCONT') // a paused (SIGSTOPped) process cannot handle SIGTERM
    signalGroup(pgid, 'SIGTERM')
    if (!(await pollUntil(gone, timeoutMs))) {
      this.owner.output.line(this.spec.name, `did not stop within ${timeoutMs / 1000} s, sending SIGKILL`, 'error')
      signalGroup(pgid, 'SIGKILL')
      await pollUntil(gone, 5000)
    }
    this.state = 'exited'
  }

  /** SIGKILL the group now (second Ctrl-C). */
  killNow(): void {
    clearTimeout(this.restartTimer)
    if (this.child?.pid !== undefined) signalGroup(this.child.pid, 'SIGKILL')
  }
}

/** Starts and stops a set of named processes. */
export class Supervisor extends EventEmitter<SupervisorEvents> {
  private readonly procs = new Map<string, Supervised>()

  constructor(
    readonly output: Output,
    /** Grace period between SIGTERM and SIGKILL. */
    readonly stopTimeoutMs = 10_000,
  ) {
    super()
  }

  /** Start a process under supervision. */
  start(spec: ProcessSpec): Supervised {
    if (this.procs.has(spec.name)) throw new Error(`process ${spec.name} already started`)
    this.output.register(spec.name, spec.dim)
    const proc = new Supervised(spec, this)
    this.procs.set(spec.name, proc)
    proc.launch()
    return proc
  }

  get(name: string): Supervised | undefined {
    return this.procs.get(name)
  }

  /** Names of the supervised processes, in start order. */
  names(): string[] {
    return [...this.procs.keys()]
  }

  /** Current group ids by name (only the processes that are running). */
  pids(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [name, p] of this.procs) if (p.pid !== undefined) out[name] = p.pid
    return out
  }

  /** Stop the named processes in parallel (all when `names` is omitted). */
  async stop(names: readonly string[] = this.names()): Promise<void> {
    await Promise.all(names.map((n) => this.procs.get(n)?.stop(this.stopTimeoutMs) ?? Promise.resolve()))
  }

  /** SIGKILL every group at once. */
  killAll(): void {
    for (const p of this.procs.values()) p.killNow()
  }
}
