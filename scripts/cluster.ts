/**
 * `npm start [-- api=N worker=N]`: a complete local bosun cluster in one terminal.
 *
 * Starts ZooKeeper (standalone, tickTime 200) and nats-server (JetStream on disk) with data under
 * `.bosun/`, then the Procfile's processes (default api=1 worker=3) with prefixed output; waits for
 * `GET /readyz` and a boss, prints the API URL and a curl example. Ctrl-C / SIGTERM stops
 * everything (Procfile processes first, then the servers; SIGTERM, SIGKILL after 10 s), a second
 * Ctrl-C kills at once. A crashed Procfile process is reported and left down (BOSUN_RESTART=always
 * restarts it); crashed servers are restarted. Once ready it prints the cluster's events as they
 * happen, leadership changes highlighted (scripts/lib/event-feed.ts; BOSUN_EVENT_LOG=0 turns it off).
 * README's "The local cluster (`npm start`)" lists every option.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { followClusterEvents } from './lib/event-feed.js'
import { Output } from './lib/output.js'
import { processAlive } from './lib/proc.js'
import {
  formatFormation,
  parseFormation,
  parseProcfile,
  shellArgs,
  type Formation,
  type ProcfileEntry,
} from './lib/procfile.js'
import { waitReady } from './lib/readiness.js'
import { pickPort, planNats, planZooKeeper, type ServerPlan } from './lib/servers.js'
import { Supervisor, type ExitInfo, type RestartPolicy } from './lib/supervisor.js'
import { startWatchdog, type Watchdog } from './lib/watchdog.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const DEFAULT_FORMATION = { api: 1, worker: 3 }
const USAGE = `usage: npm start -- [api=N] [worker=N]   (or: node dist/scripts/cluster.js [--fresh] [api=N,worker=N])
  --fresh   wipe the ZooKeeper and NATS data under BOSUN_HOME first
environment: BOSUN_HOME (data folder, default ./.bosun), BOSUN_PROCFILE, BOSUN_ZK_PORT, BOSUN_NATS_PORT,
  BOSUN_NATS_MONITOR_PORT, BOSUN_API_PORT (first api port), BOSUN_READY_TIMEOUT_MS, BOSUN_RESTART=always,
  BOSUN_STOP_TIMEOUT_MS, BOSUN_CLUSTER_PIDS=1, BOSUN_EVENT_LOG=0 (no event lines);
  passed to the processes: BOSUN_CLUSTER, ZK_SESSION_TIMEOUT_MS, LOG_LEVEL, LOG_PRETTY, HOST,
  WORKER_CONCURRENCY, FUNCTIONS_DIR …`

/** A positive integer from the environment, or undefined when unset. */
function intEnv(name: string): number | undefined {
  const raw = process.env[name]?.trim()
  if (raw === undefined || raw === '') return undefined
  if (!/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 2_147_483_647)
    throw new Error(`${name}=${JSON.stringify(raw)} is not a positive integer`)
  return Number(raw)
}

/** A TCP port from the environment, or undefined when unset. */
function portEnv(name: string): number | undefined {
  const port = intEnv(name)
  if (port !== undefined && port > 65535) throw new Error(`${name}=${port} is not a TCP port`)
  return port
}

/** Refuse to run twice on the same data folder. */
function takeLock(file: string): void {
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8').trim())
    let cmd = ''
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    } catch {
      /* not Linux, or gone */
    }
    if (pid > 0 && pid !== process.pid && processAlive(pid) && (cmd === '' || cmd.includes('cluster'))) {
      throw new Error(
        `another local cluster (pid ${pid}) is using ${dirname(dirname(file))}; stop it or set BOSUN_HOME`,
      )
    }
  }
  writeFileSync(file, `${process.pid}\n`)
}

interface Settings {
  readonly procfile: string
  readonly entries: ProcfileEntry[]
  readonly formation: Formation
  readonly home: string
  readonly fresh: boolean
  readonly restart: RestartPolicy
  readonly readyTimeoutMs: number
  readonly stopTimeoutMs: number
  readonly printPids: boolean
  readonly eventLog: boolean
  /** Explicit ports from BOSUN_*_PORT (undefined: preferred port or any free one). */
  readonly ports: { zk?: number; nats?: number; natsMonitor?: number; api?: number }
}

function readSettings(argv: string[]): Settings {
  const procfile = resolve(process.env.BOSUN_PROCFILE || join(ROOT, 'Procfile'))
  const entries = parseProcfile(readFileSync(procfile, 'utf8'))
  const restart = process.env.BOSUN_RESTART || 'never'
  if (restart !== 'never' && restart !== 'always')
    throw new Error(`BOSUN_RESTART must be never or always, got ${JSON.stringify(restart)}`)
  return {
    procfile,
    entries,
    formation: parseFormation(
      argv.filter((a) => !a.startsWith('-')),
      entries,
      DEFAULT_FORMATION,
    ),
    home: resolve(process.env.BOSUN_HOME || join(ROOT, '.bosun')),
    fresh: argv.includes('--fresh'),
    restart,
    readyTimeoutMs: intEnv('BOSUN_READY_TIMEOUT_MS') ?? 120_000,
    stopTimeoutMs: intEnv('BOSUN_STOP_TIMEOUT_MS') ?? 10_000,
    printPids: process.env.BOSUN_CLUSTER_PIDS === '1',
    eventLog: process.env.BOSUN_EVENT_LOG !== '0',
    ports: {
      zk: portEnv('BOSUN_ZK_PORT'),
      nats: portEnv('BOSUN_NATS_PORT'),
      natsMonitor: portEnv('BOSUN_NATS_MONITOR_PORT'),
      api: portEnv('BOSUN_API_PORT'),
    },
  }
}

/** The local cluster: servers, Procfile processes, watchdog, shutdown. */
class LocalCluster {
  readonly output = new Output()
  readonly supervisor: Supervisor
  private readonly runDir: string
  private watchdog: Watchdog | undefined
  private readonly serverNames: string[] = []
  private readonly appNames: string[] = []
  private apiUrls: string[] = []
  private ready = false
  private locked = false
  private closing: Promise<void> | undefined
  private closingSince = 0
  private readonly aborter = new AbortController()
  private readonly startedAt = new Date()

  constructor(private readonly s: Settings) {
    this.supervisor = new Supervisor(this.output, s.stopTimeoutMs)
    this.runDir = join(s.home, 'run')
    this.output.register('bosun')
    this.output.register('events')
    for (const name of ['zookeeper', 'nats']) this.output.register(name, true)
    for (const [type, count] of s.formation) if (count > 0) this.output.register(`${type}.${count}`)
  }

  say(text: string, error = false): void {
    this.output.line('bosun', text, error ? 'error' : undefined)
  }

  async run(): Promise<void> {
    const { s } = this
    mkdirSync(this.runDir, { recursive: true })
    mkdirSync(join(s.home, 'logs'), { recursive: true })
    takeLock(join(this.runDir, 'cluster.pid'))
    this.locked = true
    if (s.fresh) for (const d of ['zookeeper', 'nats']) rmSync(join(s.home, d), { recursive: true, force: true })
    this.watchdog = startWatchdog(process.pid, join(this.runDir, 'pgids'))
    this.supervisor.on('spawn', () => this.recordPids())
    this.supervisor.on('crash', (name, exit, willRestart) => this.onCrash(name, exit, willRestart))

    const used = new Set<number>()
    const dirs = { home: s.home, logs: join(s.home, 'logs') }
    const zk = planZooKeeper(dirs, await pickPort('ZooKeeper', 2181, s.ports.zk, used))
    const nats = planNats(
      dirs,
      await pickPort('NATS', 4222, s.ports.nats, used),
      await pickPort('NATS monitor', 8222, s.ports.natsMonitor, used),
    )
    this.say(`data in ${s.home}; server logs in ${dirs.logs}`)
    await Promise.all([this.startServer(zk), this.startServer(nats)])
    if (this.closing) return
    this.say(`ZooKeeper ${zk.connect}, NATS ${nats.url} (monitor ${nats.monitorUrl})`)

    await this.startApps(zk.connect, nats.url, used)
    if (this.closing) return
    await this.awaitReady()
  }

  private async startServer(plan: ServerPlan): Promise<void> {
    this.serverNames.push(plan.spec.name)
    const proc = this.supervisor.start(plan.spec)
    const deadline = Date.now() + 60_000
    while (!this.closing) {
      if (await plan.ready()) return
      if (proc.state === 'exited' || Date.now() > deadline)
        throw new Error(`${plan.spec.name} did not start; see ${plan.spec.logFile}`)
      await new Promise((r) => setTimeout(r, 100))
    }
  }

  private async startApps(zkConnect: string, natsUrl: string, used: Set<number>): Promise<void> {
    const { s } = this
    const basePort = s.ports.api
    let typeIndex = 0
    for (const entry of s.entries) {
      const count = s.formation.get(entry.name) ?? 0
      for (let i = 1; i <= count; i++) {
        const preferred = 3000 + 100 * typeIndex + i - 1
        const explicit = entry.name === 'api' && basePort !== undefined ? basePort + i - 1 : undefined
        const port = await pickPort(`${entry.name}.${i}`, preferred, explicit, used)
        if (entry.name === 'api') this.apiUrls.push(`http://127.0.0.1:${port}`)
        const [cmd, args] = shellArgs(entry.command)
        const name = `${entry.name}.${i}`
        this.appNames.push(name)
        this.supervisor.start({
          name,
          command: cmd,
          args,
          cwd: dirname(s.procfile),
          restart: s.restart,
          env: {
            ...process.env,
            ZK_CONNECT: zkConnect,
            NATS_URL: natsUrl,
            BOSUN_CLUSTER: process.env.BOSUN_CLUSTER || 'bosun',
            BOSUN_NODE_ID: `${entry.name}-${i}`,
            PORT: String(port),
            HOST: process.env.HOST || '127.0.0.1',
            LOG_PRETTY: process.env.LOG_PRETTY || 'true',
            ZK_SESSION_TIMEOUT_MS: process.env.ZK_SESSION_TIMEOUT_MS || '3000',
            ...(this.output.color ? { FORCE_COLOR: '1' } : {}),
          },
        })
      }
      typeIndex++
    }
    this.say(`started ${formatFormation(s.formation)} from ${s.procfile}`)
  }

  private async awaitReady(): Promise<void> {
    const workers = this.s.formation.get('worker') ?? 0
    const token = process.env.BOSUN_API_TOKENS?.split(',')[0]?.trim() || undefined
    const r = await waitReady({
      apiUrls: this.apiUrls,
      expectBoss: workers > 0,
      expectJobWorker: workers > 1,
      timeoutMs: this.s.readyTimeoutMs,
      signal: this.aborter.signal,
      token,
      launchedAt: this.startedAt.getTime(),
    })
    if (this.closing) return
    if (!r.ready) {
      this.say(
        `not ready after ${this.s.readyTimeoutMs / 1000} s (still waiting for ${r.waitingFor}); ` +
          'the processes keep running, see their output above',
        true,
      )
      return
    }
    this.ready = true
    const api = this.apiUrls[0]
    const boss = r.cluster?.boss?.id
    this.say(
      `ready: API ${api ?? '(no api process)'} — ${formatFormation(this.s.formation)}${boss ? `, boss ${boss}` : ''}`,
    )
    if (api) {
      const auth = token ? " -H 'authorization: Bearer <a token from BOSUN_API_TOKENS>'" : ''
      this.say(
        `try:   curl -s -X POST '${api}/jobs?wait=10000'${auth} -H 'content-type: application/json' ` +
          `-d '{"function":"echo","payload":{"hello":"bosun"}}'`,
      )
      this.say(`       curl -s${auth} ${api}/cluster`)
    }
    if (workers === 1)
      this.say('note: with worker=1 the only worker is the boss, which does not run jobs; use worker=2 or more')
    this.say('Ctrl-C stops everything')
    this.recordPids()
    if (this.s.eventLog && this.apiUrls.length > 0) {
      void followClusterEvents({
        apiUrls: this.apiUrls,
        token,
        since: this.startedAt,
        signal: this.aborter.signal,
        print: (line, highlight) => this.output.line('events', line, highlight ? 'highlight' : undefined),
      })
    }
  }

  private onCrash(name: string, exit: ExitInfo, willRestart: boolean): void {
    if (this.closing) return
    const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`
    const log = this.supervisor.get(name)?.spec.logFile
    if (willRestart) {
      this.say(`${name} ${how}; restarting it${log ? ` (log: ${log})` : ''}`, true)
      return
    }
    this.say(
      `${name} ${how}; not restarted, the rest keep running (BOSUN_RESTART=always restarts crashed processes)`,
      true,
    )
    const left = this.appNames.filter(
      (n) => this.supervisor.get(n)?.state === 'running' || this.supervisor.get(n)?.state === 'backoff',
    )
    if (this.appNames.length > 0 && left.length === 0) void this.shutdown(1, 'every Procfile process has exited')
  }

  /** Keep the watchdog's list and run/pids.json current; print the pids line when asked. */
  private recordPids(): void {
    const pids = this.supervisor.pids()
    this.watchdog?.update(Object.values(pids))
    const info = { launcher: process.pid, watchdog: this.watchdog?.pid, api: this.apiUrls, processes: pids }
    try {
      writeFileSync(join(this.runDir, 'pids.json'), JSON.stringify(info, null, 2) + '\n')
    } catch {
      /* data folder removed under us: nothing to record */
    }
    if (this.ready && this.s.printPids) process.stdout.write(`BOSUN_CLUSTER_PIDS ${JSON.stringify(info)}\n`)
  }

  /**
   * Stop everything (idempotent). A second request more than a second after the first kills every
   * group at once (under `npm start`, Ctrl-C arrives twice at the same moment: from the terminal and
   * forwarded by npm).
   */
  shutdown(code: number, reason: string): Promise<void> {
    if (this.closing) {
      if (Date.now() - this.closingSince > 1000) {
        this.say('stopping now (SIGKILL)', true)
        this.supervisor.killAll()
      }
      return this.closing
    }
    this.closingSince = Date.now()
    this.aborter.abort()
    this.closing = (async () => {
      this.say(reason, code !== 0)
      if (this.supervisor.names().length > 0)
        this.say(`stopping ${this.appNames.length} Procfile processes, then the servers (Ctrl-C again to kill at once)`)
      await this.supervisor.stop(this.appNames)
      await this.supervisor.stop(this.serverNames)
      this.watchdog?.stop()
      if (this.locked) rmSync(join(this.runDir, 'cluster.pid'), { force: true })
      this.say(code === 0 ? 'stopped' : 'stopped after an error')
      process.exit(code)
    })()
    return this.closing
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2)
  if (argv.includes('-h') || argv.includes('--help')) {
    console.log(USAGE)
    return
  }
  let cluster: LocalCluster
  try {
    cluster = new LocalCluster(readSettings(argv))
  } catch (err) {
    console.error(`bosun: ${(err as Error).message}\n${USAGE}`)
    process.exit(2)
  }
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.on(sig, () => void cluster.shutdown(0, `got ${sig}`))
  process.on('uncaughtException', (err) => void cluster.shutdown(1, `internal error: ${err.stack ?? err.message}`))
  process.stdout.on('error', () => undefined) // output piped into a closed reader must not kill the launcher
  try {
    await cluster.run()
  } catch (err) {
    await cluster.shutdown(1, `cannot start: ${(err as Error).message}`)
  }
}

void main()
