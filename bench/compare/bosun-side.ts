/**
 * bosun's side of the compare benchmark: a fresh cluster (new BOSUN_CLUSTER on the shared ZooKeeper
 * and NATS) of the API and N worker processes (one becomes the boss) × WORKER_CONCURRENCY, LOG_LEVEL
 * warn, running the bundled `noop`; the native client (client/native.ts) in the bench process.
 * Completion is seen from the streams, one `streams.info` request per poll: DONE's last sequence as
 * progress, SUBMIT empty (every batch closed once all its jobs are final) as the end. close() stops
 * the processes and deletes the cluster's streams, so one run's history does not weigh on the next
 * run's NATS.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream'
import { NativeClient } from '../../client/native.js'
import { streamNames } from '../../jobs/streams/index.js'
import { spawnBosun, TestCluster } from '../../test/helpers/processes.js'
import { freePort, uniqueName } from '../../test/helpers/servers.js'
import type { Nats, Zk } from '../e2e/cluster.js'
import { natsRoundTripProbe } from './floor.js'
import type { System } from './measure.js'

export interface BosunSettings {
  /** Worker processes (one becomes the boss). */
  workers: number
  concurrency: number
  /** FUNCTION_ISOLATION for the workers (e.g. `threads`; the inline pair's value comes from --bosun-inline). */
  isolation: string
  sessionTimeoutMs: number
  /** WORKER_PREFETCH (undefined: the workers' default). */
  prefetch?: number
}

const NOOP = { function: 'noop' } as const

export interface BosunSystem extends System {
  readonly cluster: string
}

/** Start a cluster and wait until the boss and workers − 1 job-running workers are ready. */
export async function startBosun(zk: Zk, nats: Nats, s: BosunSettings): Promise<BosunSystem> {
  const name = uniqueName('cmp')
  const cluster = new TestCluster({
    zk,
    nats,
    cluster: name,
    workers: s.workers,
    concurrency: s.concurrency,
    sessionTimeoutMs: s.sessionTimeoutMs,
    env: { LOG_LEVEL: 'warn' },
  })
  let nc: NatsConnection | undefined
  let client: NativeClient | undefined
  try {
    // FUNCTION_THREADS from the bench's environment (unset: the workers' default, one thread per core).
    const threads = process.env.FUNCTION_THREADS
    const workerEnv = {
      FUNCTION_ISOLATION: s.isolation,
      ...(threads ? { FUNCTION_THREADS: threads } : {}),
      ...(s.prefetch === undefined ? {} : { WORKER_PREFETCH: String(s.prefetch) }),
    }
    for (let i = 0; i < s.workers; i++) cluster.addWorker(workerEnv)
    const port = await freePort()
    cluster.api = spawnBosun('api', 'dist/api/main.js', {
      ...cluster.env(),
      PORT: String(port),
      HOST: '127.0.0.1',
      BOSUN_NODE_ID: `api-${port}`,
    })
    cluster.apiUrl = `http://127.0.0.1:${port}`
    // A loaded 2-core machine starts 5 workers of 16 threads each slowly.
    const state = await cluster.waitReady(s.workers - 1, 180_000)
    nc = await connect({ servers: nats.url.split(','), name: `bench-compare-${name}` })
    const jsm = await jetstreamManager(nc)
    client = await NativeClient.connect({ natsUrl: nats.url, cluster: name })
    return system(name, cluster, zk, nats, nc, jsm, client, state.boss?.pid)
  } catch (err) {
    await client?.close()
    await nc?.close()
    await cluster.close()
    throw err
  }
}

function system(
  name: string,
  cluster: TestCluster,
  zk: Zk,
  nats: Nats,
  nc: NatsConnection,
  jsm: JetStreamManager,
  client: NativeClient,
  bossPid: number | undefined,
): BosunSystem {
  const { done, submit } = streamNames(name)
  let closing: Promise<void> | undefined
  return {
    side: 'bosun',
    cluster: name,
    httpUrl: cluster.apiUrl,
    // DONE holds one message per final record or per group of them (jobs/streams/final-groups.ts): its
    // last sequence grows with the finished jobs but does not count them. A batch's submit message is
    // deleted once its jobs are all final, so an empty SUBMIT after the submits were acknowledged
    // means every job is finished.
    async finished() {
      try {
        return (await jsm.streams.info(done)).state.last_seq
      } catch (err) {
        if (/stream not found/i.test((err as Error).message)) return 0
        throw err
      }
    },
    async idle() {
      try {
        return (await jsm.streams.info(submit)).state.messages === 0
      } catch (err) {
        if (/stream not found/i.test((err as Error).message)) return false
        throw err
      }
    },
    pids() {
      const pids: Record<string, number | undefined> = {
        zookeeper: zk.server.pid,
        'nats-server': nats.server.pid,
        api: cluster.api.pid,
      }
      let i = 0
      for (const w of cluster.workers) pids[w.pid === bossPid ? 'boss' : `worker${++i}`] = w.pid
      return pids
    },
    async nativeBatch(n) {
      await client.submitBatch(Array.from({ length: n }, () => NOOP))
    },
    async nativeOne() {
      await client.submit(NOOP)
    },
    roundTripProbe: () => natsRoundTripProbe(nats.url),
    close() {
      closing ??= (async () => {
        await client.close().catch(() => undefined)
        await cluster.close()
        try {
          const names: string[] = []
          for await (const s of jsm.streams.names()) if (s.startsWith(`bosun_${name}_`)) names.push(s)
          await Promise.all(names.map((s) => jsm.streams.delete(s)))
        } finally {
          await nc.close()
        }
      })()
      return closing
    },
  }
}
