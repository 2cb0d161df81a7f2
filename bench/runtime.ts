/**
 * Runtime benchmark (no API, no jobs): the ZooKeeper half of bosun on a real ZooKeeper (tickTime 100).
 *
 * (a) Lookups: cached `registry.getCapable(service)` and `election.whereisGlobal('boss')` per second
 *     after warm-up, with the session's requestCount before/after (a cache hit sends nothing), against
 *     uncached ZooKeeper round trips per second (getChildren + getData of every child, sequential —
 *     what one uncached getCapable costs).
 * (b) Leader failover with N = 3 candidate processes (bench/candidate.ts, startNode + registerCandidate):
 *     from the signal to the leader (SIGTERM: graceful close resigns; SIGKILL: the session must expire)
 *     until another candidate's onElected fires, as reported by the candidates themselves (Date.now()).
 */
import { silentLogger } from '../runner/index.js'
import { isZkError, ZkElection, ZkRegistry, ZkSession } from '../runner/zk/index.js'
import { startNats, startZooKeeper, uniqueName, type NatsHandle, type ZkHandle } from '../test/helpers/servers.js'
import { spawnLineChild, type ChildEvent, type LineChild } from './lib/line-child.js'
import { progress, summarize, type Row } from './lib/report.js'

export interface RuntimeBenchOptions {
  /** Runs per figure. @defaultValue 5 */
  runs?: number
  /** Length of one lookup measurement. @defaultValue 1000 */
  lookupMs?: number
  /** ZooKeeper session timeout of every session. @defaultValue 2000 */
  sessionTimeoutMs?: number
}

export interface BenchOutcome {
  rows: Row[]
  data: Record<string, unknown>
}

const SERVICE = 'bench-svc'
const ELECTION = 'boss'
const REGISTRANTS = 4
const CANDIDATES = 3

/** Calls `op` back to back for about `ms`; returns calls per second and the requestCount delta. */
async function rate(
  session: ZkSession,
  ms: number,
  op: () => Promise<unknown>,
  batch = 1000,
): Promise<{ perSecond: number; requests: number; calls: number }> {
  const r0 = session.requestCount
  const t0 = performance.now()
  let calls = 0
  let elapsed = 0
  do {
    for (let i = 0; i < batch; i++) await op()
    calls += batch
    elapsed = performance.now() - t0
  } while (elapsed < ms)
  return { perSecond: (calls / elapsed) * 1000, requests: session.requestCount - r0, calls }
}

function newSession(zk: ZkHandle, cluster: string, sessionTimeoutMs: number): ZkSession {
  return new ZkSession({ servers: zk.connect, cluster, sessionTimeoutMs, logger: silentLogger() })
}

async function lookups(zk: ZkHandle, runs: number, lookupMs: number, sessionTimeoutMs: number): Promise<BenchOutcome> {
  const cluster = uniqueName('rtl')
  const others: { session: ZkSession; registry: ZkRegistry; election: ZkElection }[] = []
  const session = newSession(zk, cluster, sessionTimeoutMs)
  try {
    for (let i = 0; i < REGISTRANTS; i++) {
      const s = newSession(zk, cluster, sessionTimeoutMs)
      await s.start()
      const who = { nodeId: `reg-${i}`, host: 'bench', pid: process.pid }
      const registry = new ZkRegistry({ ...who, session: s, send: () => undefined, logger: silentLogger() })
      const election = new ZkElection({ ...who, session: s, logger: silentLogger() })
      others.push({ session: s, registry, election })
      await registry.register(SERVICE, `bosun.${cluster}.proc.reg-${i}`, { functions: ['noop', 'echo'], capacity: 16 })
      if (i === 0)
        await election.registerCandidate(ELECTION, `bosun.${cluster}.proc.reg-0`, { onElected: () => undefined })
    }
    await session.start()
    const who = { nodeId: 'reader', host: 'bench', pid: process.pid }
    const registry = new ZkRegistry({ ...who, session, send: () => undefined, logger: silentLogger() })
    const election = new ZkElection({ ...who, session, logger: silentLogger() })
    // Warm-up: fill the caches, let the JIT settle.
    if ((await registry.getCapable(SERVICE)).length !== REGISTRANTS)
      throw new Error('registry cache does not see every registrant')
    if ((await election.whereisGlobal(ELECTION))?.id !== 'reg-0')
      throw new Error('whereisGlobal does not see the leader')
    await rate(session, 200, () => registry.getCapable(SERVICE))
    await rate(session, 200, () => election.whereisGlobal(ELECTION))
    const dir = session.path('services', SERVICE)
    let vanished = 0
    const uncached = async () => {
      const { children } = await session.getChildren(dir)
      for (const c of children) {
        // A registrant whose session flapped (a loaded machine) re-creates its node: skip the gap.
        await session.getData(`${dir}/${c}`).catch((err: unknown) => {
          if (!isZkError(err, 'NO_NODE')) throw err
          vanished++
        })
      }
    }
    await rate(session, 200, uncached, 10)

    const capable: number[] = []
    const whereis: number[] = []
    const roundTrips: number[] = []
    const uncachedLookups: number[] = []
    const cachedRequests: number[] = []
    const uncachedRequests: number[] = []
    for (let run = 1; run <= runs; run++) {
      const a = await rate(session, lookupMs, () => registry.getCapable(SERVICE))
      const b = await rate(session, lookupMs, () => election.whereisGlobal(ELECTION))
      const c = await rate(session, lookupMs, uncached, 10)
      capable.push(a.perSecond)
      whereis.push(b.perSecond)
      cachedRequests.push(a.requests + b.requests)
      uncachedLookups.push(c.perSecond)
      roundTrips.push(c.perSecond * (1 + REGISTRANTS))
      uncachedRequests.push(c.requests / c.calls)
      progress(
        `runtime lookups run ${run}/${runs}: getCapable ${Math.round(a.perSecond)}/s, ` +
          `whereisGlobal ${Math.round(b.perSecond)}/s (ZK requests ${a.requests + b.requests}), ` +
          `uncached ${Math.round(c.perSecond)}/s`,
      )
    }
    const rows: Row[] = [
      { name: 'cached getCapable(service)', unit: 'lookups/s', summary: summarize(capable) },
      { name: 'cached whereisGlobal(boss)', unit: 'lookups/s', summary: summarize(whereis) },
      { name: 'ZK requests during cached lookups', unit: 'requests/run', summary: summarize(cachedRequests) },
      {
        name: `uncached getCapable equivalent (1 getChildren + ${REGISTRANTS} getData)`,
        unit: 'lookups/s',
        summary: summarize(uncachedLookups),
      },
      { name: 'uncached ZK round trips, sequential', unit: 'round trips/s', summary: summarize(roundTrips) },
    ]
    return {
      rows,
      data: {
        registrants: REGISTRANTS,
        lookupMs,
        cachedRequestCountDeltaPerRun: cachedRequests,
        uncachedRequestsPerLookup: uncachedRequests,
        uncachedVanishedChildren: vanished,
      },
    }
  } finally {
    await session.close().catch(() => undefined)
    for (const o of others) {
      await o.election.close().catch(() => undefined)
      await o.registry.close().catch(() => undefined)
      await o.session.close().catch(() => undefined)
    }
  }
}

async function failover(zk: ZkHandle, nats: NatsHandle, runs: number, sessionTimeoutMs: number): Promise<BenchOutcome> {
  const cluster = uniqueName('rtf')
  let n = 0
  const all: LineChild[] = []
  const spawnCandidate = async (): Promise<LineChild> => {
    const id = `cand-${++n}`
    const c = spawnLineChild(id, 'dist/bench/candidate.js', {
      ZK_CONNECT: zk.connect,
      NATS_URL: nats.url,
      BOSUN_CLUSTER: cluster,
      ZK_SESSION_TIMEOUT_MS: String(sessionTimeoutMs),
      BOSUN_NODE_ID: id,
      LOG_LEVEL: 'warn',
      BENCH_ELECTION: ELECTION,
    })
    all.push(c)
    await c.next((e) => e.ev === 'ready', 30_000)
    return c
  }
  const results: Record<'SIGTERM' | 'SIGKILL', number[]> = { SIGTERM: [], SIGKILL: [] }
  const detail: { signal: string; run: number; ms: number; from: string; to: string; epoch: unknown }[] = []
  try {
    const candidates: LineChild[] = []
    for (let i = 0; i < CANDIDATES; i++) candidates.push(await spawnCandidate())
    let leader = candidates[0]!
    await leader.next((e) => e.ev === 'elected')
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      for (let run = 1; run <= runs; run++) {
        const followers = candidates.filter((c) => c !== leader)
        const t0 = Date.now()
        leader.signal(signal)
        const elected = await Promise.any(
          followers.map((f) =>
            f
              .next((e: ChildEvent) => e.ev === 'elected' && e.t >= t0, 4 * sessionTimeoutMs + 10_000)
              .then((e) => ({ f, e })),
          ),
        )
        const ms = elected.e.t - t0
        results[signal].push(ms)
        detail.push({ signal, run, ms, from: leader.name, to: elected.f.name, epoch: elected.e.epoch })
        progress(`runtime failover ${signal} run ${run}/${runs}: ${ms} ms (${leader.name} → ${elected.f.name})`)
        await leader.exited
        candidates.splice(candidates.indexOf(leader), 1)
        leader = elected.f
        candidates.push(await spawnCandidate())
      }
    }
    return {
      rows: [
        {
          name: 'election failover after SIGTERM (graceful resign)',
          unit: 'ms',
          summary: summarize(results.SIGTERM),
          target: { kind: 'max', limit: 200 },
        },
        {
          name: 'election failover after kill -9',
          unit: 'ms',
          summary: summarize(results.SIGKILL),
          target: { kind: 'max', limit: sessionTimeoutMs + 500 },
        },
      ],
      data: { candidates: CANDIDATES, sessionTimeoutMs, zkTickTimeMs: 100, failovers: detail },
    }
  } finally {
    await Promise.all(all.map((c) => c.kill()))
  }
}

/** Run the runtime benchmark on its own ZooKeeper and NATS (both stopped at the end). */
export async function runtimeBench(opts: RuntimeBenchOptions = {}): Promise<BenchOutcome> {
  const runs = opts.runs ?? 5
  const sessionTimeoutMs = opts.sessionTimeoutMs ?? 2000
  const zk = await startZooKeeper({ tickTime: 100 })
  let nats: NatsHandle | undefined
  try {
    nats = await startNats({ jetstream: false })
    progress(`runtime: ZooKeeper ${zk.connect}, NATS ${nats.url}`)
    const a = await lookups(zk, runs, opts.lookupMs ?? 1000, sessionTimeoutMs)
    const b = await failover(zk, nats, runs, sessionTimeoutMs)
    return {
      rows: [...a.rows, ...b.rows],
      data: { runs, sessionTimeoutMs, zkTickTimeMs: 100, lookups: a.data, failover: b.data },
    }
  } finally {
    await nats?.close()
    await zk.close()
  }
}
