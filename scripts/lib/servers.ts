/**
 * Server launcher for the local cluster: writes the config of a standalone ZooKeeper and a
 * JetStream nats-server under the data folder, picks their ports, and knows when they serve.
 * The processes themselves are started by the supervisor (restart policy `always`).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { createServer, connect as netConnect } from 'node:net'
import { delimiter, join } from 'node:path'
import type { ProcessSpec } from './supervisor.js'

const ZK_CLASSPATH = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-nop.jar'].join(':')
const ZK_MAIN = 'org.apache.zookeeper.server.ZooKeeperServerMain'

/** A server ready to be handed to the supervisor, plus how to tell that it serves. */
export interface ServerPlan {
  readonly spec: ProcessSpec
  /** Resolves true once the server answers its readiness probe. */
  ready(): Promise<boolean>
}

/** Can we listen on 127.0.0.1:port right now? */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

/** A port the OS reports free. */
export function anyFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      srv.close(() => (addr !== null && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/**
 * `explicit` (from an env override) must be free or we fail; otherwise `preferred` when free,
 * else any free port. `avoid` lists ports already handed out in this run.
 */
export async function pickPort(
  what: string,
  preferred: number,
  explicit: number | undefined,
  avoid: Set<number>,
): Promise<number> {
  if (explicit !== undefined) {
    if (!(await portFree(explicit)))
      throw new Error(`${what} port ${explicit} (from the environment) is already in use`)
    avoid.add(explicit)
    return explicit
  }
  let port = preferred
  while (avoid.has(port) || !(await portFree(port))) port = await anyFreePort()
  avoid.add(port)
  return port
}

/** Send a ZooKeeper four-letter word; the answer, or '' on failure/timeout. */
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

/** Options shared by both servers. */
export interface ServerDirs {
  /** Data folder root (`.bosun/`). */
  readonly home: string
  /** Folder for server logs. */
  readonly logs: string
}

/**
 * Standalone ZooKeeper with tickTime 200 ms: session timeouts from 400 ms to 60 s are allowed,
 * so the local cluster can use short ones (fast failover). Data persists in `<home>/zookeeper`.
 */
export function planZooKeeper(dirs: ServerDirs, port: number): ServerPlan & { connect: string } {
  const dir = join(dirs.home, 'zookeeper')
  mkdirSync(join(dir, 'data'), { recursive: true })
  const cfg = join(dir, 'zoo.cfg')
  writeFileSync(
    cfg,
    [
      '# written by scripts/cluster.ts on every start',
      'tickTime=200',
      'minSessionTimeout=400',
      'maxSessionTimeout=60000',
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${port}`,
      'clientPortAddress=127.0.0.1',
      '4lw.commands.whitelist=*',
      'admin.enableServer=false',
      'maxClientCnxns=0',
      'autopurge.snapRetainCount=3',
      'autopurge.purgeInterval=1',
    ].join('\n') + '\n',
  )
  return {
    connect: `127.0.0.1:${port}`,
    spec: {
      name: 'zookeeper',
      command: 'java',
      args: ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', ZK_CLASSPATH, ZK_MAIN, cfg],
      cwd: dir,
      env: process.env,
      restart: 'always',
      logFile: join(dirs.logs, 'zookeeper.log'),
      dim: true,
    },
    // `srvr` answers `Mode:` only when the server really serves (`ruok` says imok earlier).
    ready: async () => /^Mode: /m.test(await fourLetterWord(port, 'srvr', 300)),
  }
}

/** The nats-server binary: $NATS_SERVER_BIN, /usr/sbin/nats-server, or the one on PATH. */
export function natsBinary(): string {
  if (process.env.NATS_SERVER_BIN) return process.env.NATS_SERVER_BIN
  if (existsSync('/usr/sbin/nats-server')) return '/usr/sbin/nats-server'
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, 'nats-server'))) return join(dir, 'nats-server')
  }
  return 'nats-server'
}

/** nats-server with JetStream on file storage in `<home>/nats/jetstream`, monitoring on `monitorPort`. */
export function planNats(
  dirs: ServerDirs,
  port: number,
  monitorPort: number,
): ServerPlan & { url: string; monitorUrl: string } {
  const dir = join(dirs.home, 'nats')
  mkdirSync(join(dir, 'jetstream'), { recursive: true })
  const cfg = join(dir, 'nats.conf')
  writeFileSync(
    cfg,
    [
      '# written by scripts/cluster.ts on every start',
      'server_name: bosun_local',
      `listen: 127.0.0.1:${port}`,
      `http: 127.0.0.1:${monitorPort}`,
      'max_payload: 8MB',
      `jetstream { store_dir: "${join(dir, 'jetstream')}" }`,
    ].join('\n') + '\n',
  )
  const monitorUrl = `http://127.0.0.1:${monitorPort}`
  return {
    url: `nats://127.0.0.1:${port}`,
    monitorUrl,
    spec: {
      name: 'nats',
      command: natsBinary(),
      args: ['-c', cfg],
      cwd: dir,
      env: process.env,
      restart: 'always',
      logFile: join(dirs.logs, 'nats.log'),
      dim: true,
    },
    ready: async () => {
      try {
        const res = await fetch(`${monitorUrl}/healthz`, { signal: AbortSignal.timeout(500) })
        return res.ok
      } catch {
        return false
      }
    },
  }
}
