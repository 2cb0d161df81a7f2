/**
 * Server processes for tests (test/helpers/servers.ts starts ZooKeeper and nats-server with it):
 * free loopback ports, a spawn whose watchdog kills the server when the test process dies, and the
 * stop / kill -9 / SIGSTOP / restart every server offers.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { createServer, connect as netConnect } from 'node:net'
import { waitFor } from './wait.js'

const live = new Set<ChildProcess>()

function killAllSync(): void {
  for (const child of live) {
    try {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    } catch {
      /* already gone */
    }
  }
  live.clear()
}
process.once('exit', killAllSync)
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(sig, () => {
    killAllSync()
    process.exit(130)
  })
}

/** Ports freePort() has handed out in this process: the OS may offer a just-closed port again. */
const handedOut = new Set<number>()

/**
 * Ports below the kernel's ephemeral range: a port inside it can be taken as the local port of any
 * process's outgoing connection between freePort() and the server binding it (then the server exits
 * with EADDRINUSE). Undefined when the range cannot be read or leaves no room below it.
 */
const belowEphemeral: { lo: number; hi: number } | undefined = (() => {
  try {
    const [ephemeralLo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number)
    const lo = 20_000
    const hi = (ephemeralLo ?? 0) - 1
    return hi - lo >= 2_000 ? { lo, hi } : undefined
  } catch {
    return undefined
  }
})()

/**
 * A free TCP port on 127.0.0.1, never one this process was given before (an ensemble config naming
 * one port twice makes ZooKeeper exit with "invalid config"). Picked at random below the ephemeral
 * range and checked by binding it; the OS's pick when there is no such range.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; ; tries++) {
    const wanted = belowEphemeral && tries < 200 ? randomPort(belowEphemeral) : 0
    const port = await bindable(wanted)
    if (port === undefined || handedOut.has(port)) continue
    handedOut.add(port)
    return port
  }
}

function randomPort(range: { lo: number; hi: number }): number {
  return range.lo + Math.floor(Math.random() * (range.hi - range.lo + 1))
}

/** Listen on `port` (0: the OS picks) on 127.0.0.1 and release it: the port, or undefined when taken. */
function bindable(port: number): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', (err: NodeJS.ErrnoException) => {
      if (port !== 0 && (err.code === 'EADDRINUSE' || err.code === 'EACCES')) resolve(undefined)
      else reject(err)
    })
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address()
      if (addr === null || typeof addr === 'string') return reject(new Error('no port'))
      srv.close(() => resolve(addr.port))
    })
  })
}

/** Spawn a server with a watchdog that SIGKILLs it if this test process disappears. */
export function spawnGuarded(cmd: string, args: string[], logFile: string): ChildProcess {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'ignore'] })
  live.add(child)
  child.once('exit', () => live.delete(child))
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
  void logFile
  return child
}

/** True when every thread of `pid` is stopped (state T in /proc/<pid>/task/<tid>/stat). */
function allThreadsStopped(pid: number): boolean {
  try {
    return readdirSync(`/proc/${pid}/task`).every((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8')
      return /^[Tt]/.test(stat.slice(stat.lastIndexOf(')') + 2))
    })
  } catch {
    return false
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => child.once('exit', () => resolve()))
}

/** Send a ZooKeeper four-letter word and return the answer (empty string on failure). */
export function fourLetterWord(port: number, word: string, timeoutMs = 500): Promise<string> {
  return new Promise((resolve) => {
    let out = ''
    const sock = netConnect({ host: '127.0.0.1', port })
    const done = () => {
      sock.destroy()
      resolve(out)
    }
    sock.setTimeout(timeoutMs, done)
    sock.on('connect', () => sock.write(word))
    sock.on('data', (d) => (out += d.toString()))
    sock.on('end', done)
    sock.on('error', done)
  })
}

export interface ServerProcess {
  readonly pid: number | undefined
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>
  /** SIGKILL and wait for exit. */
  kill(): Promise<void>
  /**
   * SIGSTOP: the process freezes, its sockets stay open. Resolves once the kernel shows it stopped:
   * on these VMs a stop can land a few milliseconds after kill(2) returns, time enough for the server
   * to answer a request sent just after (test/jobs/streams-faults.test.ts met it).
   */
  pause(): Promise<void>
  /** SIGCONT after pause(). */
  resume(): void
  /** Start again on the same ports and data dir; resolves when serving. */
  restart(): Promise<void>
  readonly running: boolean
}

export abstract class GuardedServer implements ServerProcess {
  protected child: ChildProcess | undefined
  get pid(): number | undefined {
    return this.child?.pid
  }
  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }
  protected abstract launch(): ChildProcess
  protected abstract ready(): Promise<boolean>
  async start(): Promise<void> {
    this.child = this.launch()
    const child = this.child
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${this.constructor.name} exited with ${child.exitCode}`)
        return this.ready()
      },
      { timeoutMs: 30_000, intervalMs: 50, what: `${this.constructor.name} ready` },
    )
  }
  async stop(): Promise<void> {
    if (!this.child || !this.running) return
    this.child.kill('SIGCONT')
    this.child.kill('SIGTERM')
    await exited(this.child)
  }
  async kill(): Promise<void> {
    if (!this.child || !this.running) return
    this.child.kill('SIGKILL')
    await exited(this.child)
  }
  async pause(): Promise<void> {
    const pid = this.child?.pid
    if (pid === undefined || !this.running) return
    this.child!.kill('SIGSTOP')
    await waitFor(() => (allThreadsStopped(pid) ? true : undefined), {
      timeoutMs: 5000,
      intervalMs: 1,
      what: `${this.constructor.name} stopped`,
    })
  }
  resume(): void {
    this.child?.kill('SIGCONT')
  }
  async restart(): Promise<void> {
    await this.kill()
    await this.start()
  }
}
