/**
 * Shared helpers of the hostile-input and security tests: a FUNCTIONS_DIR with the hostile fixture
 * functions, raw HTTP over a socket (bytes exactly as given), a raw ZooKeeper client with coded
 * errors, and the "still healthy" check every test ends with.
 */
import { copyFileSync, mkdtempSync, readdirSync } from 'node:fs'
import { connect as netConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import zookeeper from 'node-zookeeper-client'
import { ROOT, type TestCluster } from '../helpers/processes.js'
import { waitFor } from '../helpers/wait.js'

/**
 * ZooKeeper session timeout of the test clusters: long enough that a process starting up on a
 * heavily loaded machine does not lose its first session (these tests do not measure failover time).
 */
export const SESSION_TIMEOUT_MS = 6000

/** A temp FUNCTIONS_DIR: the bundled functions plus test/fixtures/hostile-functions. */
export function hostileFunctionsDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-hostile-fns-'))
  for (const src of [join(ROOT, 'worker', 'functions'), join(ROOT, 'test', 'fixtures', 'hostile-functions')]) {
    for (const f of readdirSync(src))
      if (f.endsWith('.mjs') || f.endsWith('.js')) copyFileSync(join(src, f), join(dir, f))
  }
  return dir
}

export interface RawResponse {
  /** HTTP status, or 0 when the server closed without answering. */
  status: number
  /** Everything the server sent. */
  text: string
  /** The server closed the connection (as opposed to our timeout). */
  closedByServer: boolean
}

/** Send `bytes` on a fresh connection and read until the server closes or `timeoutMs` passes. */
export function rawRequest(port: number, bytes: Buffer | string, timeoutMs = 10_000): Promise<RawResponse> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    const sock = netConnect({ host: '127.0.0.1', port })
    let settled = false
    const done = (closedByServer: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      sock.destroy()
      const text = Buffer.concat(chunks).toString('latin1')
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      resolve({ status: m ? Number(m[1]) : 0, text, closedByServer })
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    sock.on('connect', () => sock.end(bytes))
    sock.on('data', (d) => chunks.push(d))
    sock.on('close', () => done(true))
    sock.on('error', () => done(true))
  })
}

/**
 * cluster.start() with patience for a loaded machine: when the first 30 s are not enough, keep
 * waiting (the processes are already spawned) up to `timeoutMs` more.
 */
export async function startCluster(cluster: TestCluster, timeoutMs = 120_000): Promise<TestCluster> {
  try {
    await cluster.start()
  } catch (err) {
    if (!cluster.api) throw err
    await cluster.waitReady(undefined, timeoutMs)
  }
  return cluster
}

/** Processes that exited, with their last log lines (for a failure message). */
export function deadProcesses(cluster: TestCluster): string[] {
  return [cluster.api, ...cluster.workers]
    .filter((p) => !p.running)
    .map((p) => `${p.name}: ${p.logs().split('\n').slice(-5).join(' | ')}`)
}

/** Log lines of every process at level ≥ 40 (warn) whose message matches. */
export function warnings(cluster: TestCluster, msg: RegExp): Record<string, unknown>[] {
  return [cluster.api, ...cluster.workers]
    .flatMap((p) => p.logLines())
    .filter((l) => typeof l.level === 'number' && l.level >= 40 && msg.test(String(l.msg)))
}

/**
 * The cluster still works: every process alive, /readyz 200, a boss, and an echo job submitted now
 * succeeds with its payload. Returns a description of what is wrong, or undefined.
 */
export async function healthProblem(cluster: TestCluster, timeoutMs = 20_000): Promise<string | undefined> {
  const dead = deadProcesses(cluster)
  if (dead.length > 0) return `processes exited: ${dead.join('; ')}`
  const ready = await fetch(`${cluster.apiUrl}/readyz`).catch(() => undefined)
  if (ready?.status !== 200) return `/readyz answered ${ready?.status}`
  const marker = `alive-${Date.now()}-${Math.random()}`
  let job: any
  try {
    job = await waitFor(
      async () => {
        const r = await cluster.post('/jobs?wait=5000', { function: 'echo', payload: { marker } })
        return r.status === 200 || r.status === 202 ? r.body : undefined
      },
      { timeoutMs, what: 'an echo job accepted' },
    )
    if (job.state !== 'succeeded') job = await cluster.waitJob(job.id, timeoutMs)
  } catch (err) {
    return `echo job: ${(err as Error).message}`
  }
  if (job.state !== 'succeeded' || job.result?.marker !== marker) return `echo job ended ${JSON.stringify(job)}`
  return undefined
}

// ---- raw ZooKeeper ------------------------------------------------------------------------------

/** A plain node-zookeeper-client (no bosun code), connected; `auth` adds digest credentials. */
export async function zkRaw(connect: string, auth?: string): Promise<zookeeper.Client> {
  const client = zookeeper.createClient(connect, { sessionTimeout: 4000, retries: 0 })
  if (auth) client.addAuthInfo('digest', Buffer.from(auth))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('raw ZooKeeper client could not connect')), 15_000)
    client.once('connected', () => {
      clearTimeout(timer)
      resolve()
    })
    client.connect()
  })
  return client
}

/** The error code name of a failed call ('OK' when it succeeded). */
export type ZkOutcome = string

function outcome(err: unknown): ZkOutcome {
  if (!err) return 'OK'
  const e = err as { name?: string; code?: number }
  return typeof e.name === 'string' ? e.name : String(e.code)
}

/** Promisified raw calls; mutating ones resolve to an outcome name instead of throwing. */
export const zk = {
  children: (c: zookeeper.Client, p: string) =>
    new Promise<string[]>((res, rej) => c.getChildren(p, (e, ch) => (e ? rej(e) : res(ch)))),
  data: (c: zookeeper.Client, p: string) =>
    new Promise<Buffer>((res, rej) => c.getData(p, (e, d) => (e ? rej(e) : res(d ?? Buffer.alloc(0))))),
  stat: (c: zookeeper.Client, p: string) =>
    new Promise<zookeeper.Stat | null>((res, rej) => c.exists(p, (e, s) => (e ? rej(e) : res(s ?? null)))),
  acl: (c: zookeeper.Client, p: string) =>
    new Promise<zookeeper.ACL[]>((res, rej) => c.getACL(p, (e, a) => (e ? rej(e) : res(a)))),
  create: (c: zookeeper.Client, p: string, data: Buffer, mode: number = zookeeper.CreateMode.PERSISTENT) =>
    new Promise<ZkOutcome>((res) => c.create(p, data, mode, (e) => res(outcome(e)))),
  setData: (c: zookeeper.Client, p: string, data: Buffer) =>
    new Promise<ZkOutcome>((res) => c.setData(p, data, -1, (e) => res(outcome(e)))),
  remove: (c: zookeeper.Client, p: string) => new Promise<ZkOutcome>((res) => c.remove(p, -1, (e) => res(outcome(e)))),
  setACL: (c: zookeeper.Client, p: string, acls: zookeeper.ACL[]) =>
    new Promise<ZkOutcome>((res) => c.setACL(p, acls, -1, (e) => res(outcome(e)))),
  close: (c: zookeeper.Client) => c.close(),
}

/** UTF-8 bytes of a string. */
export const enc = (s: string) => Buffer.from(s, 'utf8')

/** Data no bosun record parser accepts. */
export const GARBAGE: Record<string, Buffer> = {
  text: enc('not json at all'),
  empty: Buffer.alloc(0),
  binary: Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0x7b]),
  array: enc('[1,2,3]'),
  nul: enc('null'),
  shape: enc('{"v":1,"id":"wrong"}'),
  version: enc('{"v":2,"id":"x","address":"bosun.x.proc.x","host":"h","pid":1,"meta":{},"registeredAt":"now"}'),
  types: enc('{"v":1,"id":5,"address":[],"host":{},"pid":"1","meta":"x"}'),
  proto: enc('{"__proto__":{"v":1},"constructor":{"prototype":{"v":1}}}'),
  deep: enc('['.repeat(100_000) + ']'.repeat(100_000)),
}
