/**
 * Real ZooKeeper and nats-server processes for tests: free loopback ports, temp dirs,
 * stop / kill -9 / SIGSTOP / restart mid-test, and no leaked process even when the test
 * process itself dies (every server has a watchdog that kills it when its parent is gone:
 * server-process.ts).
 */
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { waitFor } from './wait.js'
import { fourLetterWord, freePort, GuardedServer, spawnGuarded } from './server-process.js'

export { fourLetterWord, freePort } from './server-process.js'

const ZK_CLASSPATH = '/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-nop.jar'
const NATS_BIN = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server'

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
