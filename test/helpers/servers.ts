/**
 * Real ZooKeeper and nats-server processes for tests: free loopback ports, temp dirs,
 * stop / kill -9 / SIGSTOP / restart mid-test, and no leaked process even when the test
 * process itself dies (every server has a watchdog that kills it when its parent is gone).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './wait.js'

const ZK_CLASSPATH = '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-nop.jar'
const NATS_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server'

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
function spawnGuarded(cmd: string, args: string[], logFile: string): ChildProcess {
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

abstract class GuardedServer implements ServerProcess {
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

export interface ZkOptions {
  tickTime?: number
  minSessionTimeout?: number
  maxSessionTimeout?: number
}

/** One ZooKeeper server (standalone or ensemble member). */
export class ZkServer extends GuardedServer {
  constructor(
    readonly port: number,
    readonly dataDir: string,
    private readonly cfgFile: string,
    private readonly mainClass: string,
  ) {
    super()
  }
  protected launch(): ChildProcess {
    return spawnGuarded(
      'java',
      ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', ZK_CLASSPATH, this.mainClass, this.cfgFile],
      join(this.dataDir, 'zk.log'),
    )
  }
  protected async ready(): Promise<boolean> {
    const out = await fourLetterWord(this.port, 'srvr', 300)
    return /^Mode: /m.test(out)
  }
  /** Stop the server and wipe its data: old sessions become unknown to it. */
  async wipe(): Promise<void> {
    await this.kill()
    rmSync(join(this.dataDir, 'version-2'), { recursive: true, force: true })
  }
}

function zkConfig(opts: ZkOptions, dataDir: string, port: number, extra: string[] = []): string {
  const tick = opts.tickTime ?? 100
  return (
    [
      `tickTime=${tick}`,
      `minSessionTimeout=${opts.minSessionTimeout ?? tick * 2}`,
      `maxSessionTimeout=${opts.maxSessionTimeout ?? 60_000}`,
      `dataDir=${dataDir}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      '4lw.commands.whitelist=*',
      'admin.enableServer=false',
      'initLimit=20',
      'syncLimit=10',
      'maxClientCnxns=0',
      ...extra,
    ].join('\n') + '\n'
  )
}

export interface ZkHandle {
  /** Connect string (no chroot). */
  readonly connect: string
  readonly servers: ZkServer[]
  close(): Promise<void>
}

/** A standalone ZooKeeper on a free port; tick 100 ms so sessions of 200 ms+ are allowed. */
export async function startZooKeeper(opts: ZkOptions = {}): Promise<ZkHandle & { server: ZkServer }> {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-zk-'))
  const port = await freePort()
  const cfg = join(dir, 'zoo.cfg')
  writeFileSync(cfg, zkConfig(opts, dir, port))
  const server = new ZkServer(port, dir, cfg, 'org.apache.zookeeper.server.ZooKeeperServerMain')
  await server.start()
  return {
    connect: `127.0.0.1:${port}`,
    server,
    servers: [server],
    async close() {
      await server.kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A ZooKeeper ensemble of `size` members on loopback; resolves when all members serve. */
export async function startZkEnsemble(size = 3, opts: ZkOptions = {}): Promise<ZkHandle> {
  const root = mkdtempSync(join(tmpdir(), 'bosun-zke-'))
  const members: { id: number; client: number; quorum: number; election: number; dir: string }[] = []
  for (let id = 1; id <= size; id++) {
    members.push({
      id,
      client: await freePort(),
      quorum: await freePort(),
      election: await freePort(),
      dir: join(root, `s${id}`),
    })
  }
  const serverLines = members.map((m) => `server.${m.id}=127.0.0.1:${m.quorum}:${m.election}`)
  const servers = members.map((m) => {
    mkdirSync(m.dir, { recursive: true })
    writeFileSync(join(m.dir, 'myid'), `${m.id}\n`)
    const cfg = join(m.dir, 'zoo.cfg')
    writeFileSync(cfg, zkConfig(opts, m.dir, m.client, serverLines))
    return new ZkServer(m.client, m.dir, cfg, 'org.apache.zookeeper.server.quorum.QuorumPeerMain')
  })
  await Promise.all(servers.map((s) => s.start()))
  return {
    connect: members.map((m) => `127.0.0.1:${m.client}`).join(','),
    servers,
    async close() {
      await Promise.all(servers.map((s) => s.kill()))
      rmSync(root, { recursive: true, force: true })
    },
  }
}

export interface NatsOptions {
  jetstream?: boolean
  /** Extra lines for the nats-server config file (auth, tls, …). */
  config?: string
}

export class NatsServer extends GuardedServer {
  constructor(
    readonly port: number,
    readonly monitorPort: number,
    private readonly cfgFile: string,
  ) {
    super()
  }
  get url(): string {
    return `nats://127.0.0.1:${this.port}`
  }
  protected launch(): ChildProcess {
    return spawnGuarded(NATS_BIN, ['-c', this.cfgFile], this.cfgFile + '.log')
  }
  protected async ready(): Promise<boolean> {
    try {
      const res = await fetch(`http://127.0.0.1:${this.monitorPort}/healthz`, { signal: AbortSignal.timeout(500) })
      return res.ok
    } catch {
      return false
    }
  }
}

export interface NatsHandle {
  /** Comma-separated server URLs. */
  readonly url: string
  readonly servers: NatsServer[]
  close(): Promise<void>
}

/** A standalone nats-server (JetStream on disk by default) on free ports. */
export async function startNats(opts: NatsOptions = {}): Promise<NatsHandle & { server: NatsServer }> {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-nats-'))
  const port = await freePort()
  const monitorPort = await freePort()
  const cfg = join(dir, 'nats.conf')
  const lines = [`listen: 127.0.0.1:${port}`, `http: 127.0.0.1:${monitorPort}`, 'max_payload: 1MB']
  if (opts.jetstream !== false) lines.push(`jetstream { store_dir: "${join(dir, 'js')}" }`)
  if (opts.config) lines.push(opts.config)
  writeFileSync(cfg, lines.join('\n') + '\n')
  const server = new NatsServer(port, monitorPort, cfg)
  await server.start()
  return {
    url: server.url,
    server,
    servers: [server],
    async close() {
      await server.kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A JetStream-enabled NATS cluster of `size` servers on loopback. */
export async function startNatsCluster(size = 3): Promise<NatsHandle> {
  const root = mkdtempSync(join(tmpdir(), 'bosun-natsc-'))
  const nodes: { name: string; port: number; monitor: number; route: number; dir: string }[] = []
  for (let i = 1; i <= size; i++) {
    nodes.push({
      name: `n${i}`,
      port: await freePort(),
      monitor: await freePort(),
      route: await freePort(),
      dir: join(root, `n${i}`),
    })
  }
  const routes = nodes.map((n) => `nats-route://127.0.0.1:${n.route}`).join(', ')
  const servers = nodes.map((n) => {
    mkdirSync(n.dir, { recursive: true })
    const cfg = join(n.dir, 'nats.conf')
    writeFileSync(
      cfg,
      [
        `server_name: ${n.name}`,
        `listen: 127.0.0.1:${n.port}`,
        `http: 127.0.0.1:${n.monitor}`,
        'max_payload: 1MB',
        `jetstream { store_dir: "${join(n.dir, 'js')}" }`,
        `cluster { name: bosun_test, listen: 127.0.0.1:${n.route}, routes: [ ${routes} ] }`,
      ].join('\n') + '\n',
    )
    return new NatsServer(n.port, n.monitor, cfg)
  })
  await Promise.all(servers.map((s) => s.start()))
  // healthz answers before the JetStream meta leader exists; wait for it.
  await waitFor(
    async () => {
      for (const s of servers) {
        const res = await fetch(`http://127.0.0.1:${s.monitorPort}/healthz?js-enabled-only=true`).catch(() => undefined)
        if (!res?.ok) return false
        const jsz = await fetch(`http://127.0.0.1:${s.monitorPort}/jsz`)
          .then((r) => r.json() as Promise<{ meta_cluster?: { leader?: string } }>)
          .catch(() => undefined)
        if (!jsz?.meta_cluster?.leader) return false
      }
      return true
    },
    { timeoutMs: 30_000, what: 'NATS cluster meta leader' },
  )
  return {
    url: servers.map((s) => s.url).join(','),
    servers,
    async close() {
      await Promise.all(servers.map((s) => s.kill()))
      rmSync(root, { recursive: true, force: true })
    },
  }
}

/** A unique name for isolating one test (ZK chroot / BOSUN_CLUSTER). */
export function uniqueName(prefix = 't'): string {
  return `${prefix}${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
}
