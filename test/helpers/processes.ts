/**
 * bosun processes for end-to-end tests: `node dist/worker/main.js` and `node dist/api/main.js`
 * (built by `npm test` before tap runs), each with its own env, logs kept in a temp file, and
 * stop (SIGTERM) / kill (SIGKILL) / pause (SIGSTOP) / resume. Every child has a watchdog that
 * kills it if the test process dies, so nothing is leaked.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, copyFileSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { freePort, type NatsHandle, type ZkHandle } from './servers.js'
import { waitFor } from './wait.js'

/** The repository root (works from test/helpers and from dist/test/helpers). */
export const ROOT = (() => {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir
    if (dirname(dir) === dir) return resolve(import.meta.dirname, '..', '..')
  }
})()
const logDir = mkdtempSync(join(tmpdir(), 'bosun-logs-'))
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of live) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
})

export class BosunProcess {
  readonly exited: Promise<number | null>
  private exitCode: number | null | undefined

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly logFile: string,
  ) {
    this.exited = new Promise((res) =>
      child.once('exit', (code, signal) => {
        live.delete(child)
        this.exitCode = code ?? (signal ? null : code)
        res(code)
      }),
    )
  }

  get pid(): number {
    return this.child.pid!
  }

  get running(): boolean {
    return this.exitCode === undefined
  }

  logs(): string {
    try {
      return readFileSync(this.logFile, 'utf8')
    } catch {
      return ''
    }
  }

  /** Parsed pino lines. */
  logLines(): Record<string, unknown>[] {
    return this.logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>
        } catch {
          return {}
        }
      })
  }

  async stop(): Promise<number | null> {
    if (!this.running) return this.exitCode ?? null
    this.child.kill('SIGCONT')
    this.child.kill('SIGTERM')
    return this.exited
  }

  async kill(): Promise<void> {
    if (!this.running) return
    this.child.kill('SIGKILL')
    await this.exited
  }

  pause(): void {
    this.child.kill('SIGSTOP')
  }

  resume(): void {
    this.child.kill('SIGCONT')
  }
}

export function spawnBosun(name: string, script: string, env: Record<string, string>): BosunProcess {
  const logFile = join(logDir, `${name}-${Date.now()}.log`)
  const fd = openSync(logFile, 'a')
  const child = spawn(process.execPath, [join(ROOT, script)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', fd, fd],
  })
  closeSync(fd)
  live.add(child)
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
  return new BosunProcess(name, child, logFile)
}

export interface ClusterOptions {
  zk: ZkHandle
  nats: NatsHandle
  cluster: string
  workers?: number
  sessionTimeoutMs?: number
  concurrency?: number
  functionsDir?: string
  env?: Record<string, string>
}

/** A test cluster: an API and N workers against the given servers. */
export class TestCluster {
  readonly workers: BosunProcess[] = []
  api!: BosunProcess
  apiUrl = ''
  private n = 0

  constructor(readonly opts: ClusterOptions) {}

  env(): Record<string, string> {
    return {
      ZK_CONNECT: this.opts.zk.connect,
      NATS_URL: this.opts.nats.url,
      BOSUN_CLUSTER: this.opts.cluster,
      ZK_SESSION_TIMEOUT_MS: String(this.opts.sessionTimeoutMs ?? 2000),
      WORKER_CONCURRENCY: String(this.opts.concurrency ?? 4),
      ...(this.opts.functionsDir ? { FUNCTIONS_DIR: this.opts.functionsDir } : {}),
      ...this.opts.env,
    }
  }

  /** Called with every process this cluster spawns (startClusterPatiently watches them). */
  onSpawn: ((p: BosunProcess) => void) | undefined

  /**
   * Spawn `workers` workers (added to any already started with addWorker) and the API, then wait until
   * the API is ready, a boss is elected and `minWorkers` workers accept jobs.
   */
  async start(timeoutMs = 120_000, minWorkers?: number): Promise<this> {
    for (let i = 0; i < (this.opts.workers ?? 3); i++) this.addWorker()
    // A port freePort() handed out can be taken by another process's outgoing connection before
    // the API binds it: then the API exits with EADDRINUSE and is started again on another port.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort()
      const env = { ...this.env(), PORT: String(port), HOST: '127.0.0.1', BOSUN_NODE_ID: `api-${port}` }
      this.api = spawnBosun('api', 'dist/api/main.js', env)
      this.onSpawn?.(this.api)
      this.apiUrl = `http://127.0.0.1:${port}`
      try {
        await this.waitReady(minWorkers, timeoutMs)
        return this
      } catch (err) {
        if (attempt >= 3 || this.api.running || !/EADDRINUSE/.test(this.api.logs())) throw err
      }
    }
  }

  addWorker(extraEnv: Record<string, string> = {}): BosunProcess {
    const id = `w${++this.n}`
    const p = spawnBosun(id, 'dist/worker/main.js', { ...this.env(), BOSUN_NODE_ID: id, ...extraEnv })
    this.workers.push(p)
    this.onSpawn?.(p)
    return p
  }

  /**
   * Wait until the API is ready, one of this cluster's running processes is the boss and `minWorkers`
   * of them accept jobs. Registrations of other processes do not count: a killed cluster's linger
   * under the same name until their ZooKeeper sessions expire (test/e2e/cluster-readiness.test.ts).
   */
  async waitReady(minWorkers?: number, timeoutMs = 120_000): Promise<ClusterState> {
    const atLeast = minWorkers ?? (this.opts.workers ?? 3) - 1
    let last = 'the API never answered /readyz with 200'
    try {
      return await waitFor(
        async () => {
          if (!this.api.running) throw new Error(`the API exited with ${await this.api.exited}`)
          const ready = await fetch(`${this.apiUrl}/readyz`).catch(() => undefined)
          if (!ready?.ok) return undefined
          const c = await this.clusterState()
          const own = new Set(this.workers.filter((w) => w.running).map((w) => w.pid))
          const ownWorkers = c.workers.filter((w) => own.has(w.pid)).length
          const boss = c.boss ? `${c.boss.id}${own.has(c.boss.pid) ? '' : ' (not ours)'}` : 'none'
          last = `last /cluster: boss ${boss}, ${ownWorkers} of ${c.workers.length} worker(s) ours`
          return c.boss && own.has(c.boss.pid) && ownWorkers >= atLeast ? c : undefined
        },
        { timeoutMs, intervalMs: 50, what: 'cluster ready' },
      )
    } catch (err) {
      throw new Error(`${(err as Error).message}; ${last}; ${this.logTails()}`, { cause: err })
    }
  }

  /** The last lines of every process's log, for a failure message. */
  logTails(lines = 4): string {
    return [this.api, ...this.workers]
      .filter((p) => p !== undefined)
      .map((p) => {
        const state = p.running ? 'running' : 'exited'
        return `${p.name} (${state}): ${p.logs().trim().split('\n').slice(-lines).join(' | ')}`
      })
      .join(' ;; ')
  }

  async clusterState(): Promise<ClusterState> {
    const res = await fetch(`${this.apiUrl}/cluster`)
    return (await res.json()) as ClusterState
  }

  /** The process currently acting as boss. */
  async bossProcess(): Promise<BosunProcess> {
    const c = await waitFor(async () => (await this.clusterState()).boss, { what: 'a boss' })
    const p = this.workers.find((w) => w.pid === c.pid && w.running)
    if (!p) throw new Error(`boss pid ${c.pid} is not one of ours`)
    return p
  }

  async post(
    path: string,
    body: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: any; headers: Headers }> {
    const res = await fetch(this.apiUrl + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    })
    return { status: res.status, body: await res.json().catch(() => undefined), headers: res.headers }
  }

  async get(path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(this.apiUrl + path)
    return { status: res.status, body: await res.json().catch(() => undefined) }
  }

  async del(path: string): Promise<{ status: number; body: any }> {
    const res = await fetch(this.apiUrl + path, { method: 'DELETE' })
    return { status: res.status, body: await res.json().catch(() => undefined) }
  }

  /** Poll a job until it is final. */
  async waitJob(id: string, timeoutMs = 30_000): Promise<any> {
    return waitFor(
      async () => {
        const r = await this.get(`/jobs/${id}`)
        return r.status === 200 && ['succeeded', 'failed', 'cancelled'].includes(r.body.state) ? r.body : undefined
      },
      { timeoutMs, intervalMs: 50, what: `job ${id} final` },
    )
  }

  async close(): Promise<void> {
    await Promise.all([...this.workers, this.api].filter(Boolean).map((p) => p.kill()))
  }
}

export interface ClusterState {
  boss: { id: string; host: string; pid: number; epoch: number; since: string } | null
  workers: { id: string; host: string; pid: number; functions: string[]; capacity: number; running: number }[]
}

/** A temp FUNCTIONS_DIR holding the bundled functions plus the e2e test functions (count, start). */
export function e2eFunctionsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-fns-'))
  for (const src of [join(ROOT, 'worker', 'functions'), join(ROOT, 'test', 'fixtures', 'e2e-functions')]) {
    for (const f of readdirSync(src))
      if (f.endsWith('.mjs') || f.endsWith('.js')) copyFileSync(join(src, f), join(dir, f))
  }
  return dir
}

// ---- waiting on a cluster and on its processes' logs ------------------------------------------------

/** A parsed pino line of a bosun process (`time` is epoch ms). */
export type LogEntry = Record<string, unknown> & { time: number; msg: string }

/** Log lines of `proc` whose `msg` matches `pattern`, logged at or after `since` (epoch ms). */
export function logEntries(proc: BosunProcess, pattern: RegExp, since = 0): LogEntry[] {
  return proc
    .logLines()
    .filter(
      (l): l is LogEntry =>
        typeof l.msg === 'string' && typeof l.time === 'number' && l.time >= since && pattern.test(l.msg),
    )
}

/** Wait for the first log line of `proc` matching `pattern` at or after `since` (epoch ms). */
export async function waitForLog(
  proc: BosunProcess,
  pattern: RegExp,
  since = 0,
  timeoutMs = 30_000,
): Promise<LogEntry> {
  return waitFor(() => logEntries(proc, pattern, since)[0], {
    timeoutMs,
    intervalMs: 50,
    what: `${proc.name} to log ${pattern}`,
  })
}

/** A cluster state with a boss. */
export type BossedState = ClusterState & { boss: NonNullable<ClusterState['boss']> }

/** Wait until GET /cluster names a boss other than `oldBossId`; returns that state. */
export async function waitForNewBoss(
  cluster: TestCluster,
  oldBossId: string,
  timeoutMs = 30_000,
): Promise<BossedState> {
  return waitFor(
    async () => {
      const s = await cluster.clusterState().catch(() => undefined)
      return s?.boss && s.boss.id !== oldBossId ? (s as BossedState) : undefined
    },
    { timeoutMs, intervalMs: 50, what: `a boss other than ${oldBossId}` },
  )
}

/** Wait until GET /cluster names a boss with an epoch greater than `epoch` (the same process may lead again). */
export async function waitForEpochAfter(cluster: TestCluster, epoch: number, timeoutMs = 30_000): Promise<BossedState> {
  return waitFor(
    async () => {
      const s = await cluster.clusterState().catch(() => undefined)
      return s?.boss && s.boss.epoch > epoch ? (s as BossedState) : undefined
    },
    { timeoutMs, intervalMs: 50, what: `a boss with an epoch after ${epoch}` },
  )
}

/**
 * `cluster.start()` with a patient readiness wait: on a loaded 2-core machine processes can take
 * longer than start()'s own wait. Resolves when the API is ready, a boss is elected and
 * `minWorkers` workers accept jobs; rejects at once (with its last log lines) when a process exits.
 */
export async function startClusterPatiently(
  cluster: TestCluster,
  minWorkers: number,
  timeoutMs = 120_000,
): Promise<void> {
  const t0 = Date.now()
  let started = false
  const died = new Promise<never>((_, reject) => {
    const watch = (p: BosunProcess) =>
      void p.exited.then(() => {
        if (started) return
        const tail = p.logs().trim().split('\n').slice(-3).join('\n')
        const how = p.child.exitCode ?? p.child.signalCode
        reject(new Error(`${p.name} (pid ${p.pid}) exited with ${how} while the cluster started:\n${tail}`))
      })
    cluster.onSpawn = watch
    for (const p of [cluster.api, ...cluster.workers].filter(Boolean)) watch(p)
  })
  died.catch(() => undefined)
  try {
    await Promise.race([cluster.start(Math.max(1000, timeoutMs - (Date.now() - t0)), minWorkers), died])
  } finally {
    started = true
    cluster.onSpawn = undefined
  }
}
