/**
 * One benchmark cluster: a TestCluster (API + N worker processes) on shared ZooKeeper and NATS servers,
 * under a fresh BOSUN_CLUSTER name, with a keep-alive HTTP client, a completion subscription, and
 * counters of the servers (ZooKeeper `mntr`, NATS `/varz`) and of every process's CPU.
 */
import type { NatsServer, ZkServer, NatsHandle, ZkHandle } from '../../test/helpers/servers.js'
import { fourLetterWord, freePort, uniqueName } from '../../test/helpers/servers.js'
import { spawnBosun, TestCluster } from '../../test/helpers/processes.js'
import { Completions } from '../lib/completions.js'
import { CpuMeter } from '../lib/cpu.js'
import { JsonClient } from '../lib/http.js'

export type Zk = ZkHandle & { server: ZkServer }
export type Nats = NatsHandle & { server: NatsServer }

export interface ClusterSettings {
  workers: number
  concurrency: number
  sessionTimeoutMs: number
  /** Extra env for every bosun process (e.g. NODE_OPTIONS for profiling). */
  env?: Record<string, string>
  /** Extra env for the API process. */
  apiEnv?: Record<string, string>
  /** Extra env for worker process `i` (0-based), e.g. its own METRICS_PORT. */
  workerEnv?: (i: number) => Promise<Record<string, string>>
}

export interface BenchCluster {
  readonly name: string
  readonly zk: Zk
  readonly nats: Nats
  readonly cluster: TestCluster
  readonly client: JsonClient
  readonly events: Completions
  /** A CPU meter over the servers, the API, the boss and the other workers (labels resolved now). */
  cpuMeter(): Promise<CpuMeter>
  close(): Promise<void>
}

/** ZooKeeper's packet counters (`mntr`). */
export async function zkPackets(zk: Zk): Promise<{ received: number; sent: number }> {
  const out = await fourLetterWord(zk.server.port, 'mntr', 2000)
  const get = (k: string) => Number(new RegExp(`^${k}\\s+(\\d+)`, 'm').exec(out)?.[1] ?? Number.NaN)
  return { received: get('zk_packets_received'), sent: get('zk_packets_sent') }
}

/** NATS server totals (`/varz`). */
export async function natsVarz(
  nats: Nats,
): Promise<{ inMsgs: number; outMsgs: number; inBytes: number; outBytes: number }> {
  try {
    const v = (await (await fetch(`http://127.0.0.1:${nats.server.monitorPort}/varz`)).json()) as Record<string, number>
    return {
      inMsgs: v.in_msgs ?? Number.NaN,
      outMsgs: v.out_msgs ?? Number.NaN,
      inBytes: v.in_bytes ?? Number.NaN,
      outBytes: v.out_bytes ?? Number.NaN,
    }
  } catch {
    return { inMsgs: Number.NaN, outMsgs: Number.NaN, inBytes: Number.NaN, outBytes: Number.NaN }
  }
}

/** What a cluster that did not get ready looks like: its view of itself and each process's last warning. */
async function diagnose(cluster: TestCluster): Promise<string> {
  const state = await cluster.clusterState().then(
    (c) => `boss ${c.boss?.id ?? 'none'}, ${c.workers.length} workers`,
    (e: Error) => `GET /cluster failed (${e.message})`,
  )
  const procs = [...cluster.workers, cluster.api].filter(Boolean).map((p) => {
    const last = p
      .logLines()
      .filter((l) => typeof l.level === 'number' && l.level >= 40)
      .pop()
    const warning = last ? `, last warning "${String(last.msg)}"` : ''
    return `${p.name}${p.running ? '' : ' (exited)'}: ${p.logLines().length} log lines${warning}`
  })
  return `${state}; ${procs.join('; ')}`
}

/** Start a cluster under a fresh name and wait until a boss and workers-1 job-running workers are ready. */
export async function openCluster(
  zk: Zk,
  nats: Nats,
  s: ClusterSettings,
  prefix = 'bench',
  /** Reuse a cluster name (fresh processes over the same store). @defaultValue a new unique name */
  reuseName?: string,
): Promise<BenchCluster> {
  const name = reuseName ?? uniqueName(prefix)
  const cluster = new TestCluster({
    zk,
    nats,
    cluster: name,
    workers: s.workers,
    concurrency: s.concurrency,
    sessionTimeoutMs: s.sessionTimeoutMs,
    env: { LOG_LEVEL: 'warn', ...s.env },
  })
  let events: Completions | undefined
  try {
    // TestCluster.start() with a longer readiness wait: a loaded 2-core machine starts 5 workers
    // of 16 threads each slowly.
    for (let i = 0; i < s.workers; i++) cluster.addWorker((await s.workerEnv?.(i)) ?? {})
    const port = await freePort()
    cluster.api = spawnBosun('api', 'dist/api/main.js', {
      ...cluster.env(),
      ...s.apiEnv,
      PORT: String(port),
      HOST: '127.0.0.1',
      BOSUN_NODE_ID: `api-${port}`,
    })
    cluster.apiUrl = `http://127.0.0.1:${port}`
    // Over a reused name the killed processes' znodes stand until their sessions expire: waitReady
    // counts only this cluster's own processes.
    await cluster.waitReady(s.workers - 1, 180_000)
    events = await Completions.open(nats.url, name)
  } catch (err) {
    const why = await diagnose(cluster)
    await cluster.close()
    throw new Error(`${(err as Error).message}; ${why}`, { cause: err })
  }
  const client = new JsonClient(cluster.apiUrl, 64)
  const ev = events
  return {
    name,
    zk,
    nats,
    cluster,
    client,
    events: ev,
    async cpuMeter() {
      const bossPid = (await cluster.clusterState()).boss?.pid
      return new CpuMeter(() => {
        const pids: Record<string, number | undefined> = {
          zookeeper: zk.server.pid,
          'nats-server': nats.server.pid,
          api: cluster.api.pid,
        }
        let i = 0
        for (const w of cluster.workers.filter((x) => x.running))
          pids[w.pid === bossPid ? 'boss' : `worker${++i}`] = w.pid
        return pids
      })
    },
    async close() {
      client.close()
      await ev.close()
      await cluster.close()
    },
  }
}
