/**
 * Read-only probes of the test servers for the fault suite: which ZooKeeper member leads (`srvr`),
 * which NATS server leads a JetStream stream and whether its replicas are current (monitoring port).
 */
import { fourLetterWord, type NatsHandle, type NatsServer, type ZkHandle, type ZkServer } from './servers.js'

/** The ensemble member that says `Mode: leader` to `srvr` (undefined while there is none). */
export async function zkLeaderMember(zk: ZkHandle): Promise<ZkServer | undefined> {
  for (const s of zk.servers) {
    if (!s.running) continue
    if (/^Mode: leader/m.test(await fourLetterWord(s.port, 'srvr', 500))) return s
  }
  return undefined
}

/**
 * True when every member of the ensemble runs and the leader counts all the others as synced
 * followers (`mntr` zk_synced_followers): a member restarted by a fault test has caught up.
 */
export async function zkEnsembleWhole(zk: ZkHandle): Promise<boolean> {
  if (!zk.servers.every((s) => s.running)) return false
  const leader = await zkLeaderMember(zk)
  if (!leader) return false
  const mntr = await fourLetterWord(leader.port, 'mntr', 1000)
  const synced = /zk_synced_followers\s+(\d+)/.exec(mntr)
  return synced !== null && Number(synced[1]) === zk.servers.length - 1
}

interface StreamDetail {
  name: string
  cluster?: { leader?: string; replicas?: { current?: boolean }[] }
}
interface Jsz {
  account_details?: { stream_detail?: StreamDetail[] }[]
}

async function monitor<T>(s: NatsServer, path: string): Promise<T | undefined> {
  const url = `http://127.0.0.1:${s.monitorPort}${path}`
  return (await fetch(url, { signal: AbortSignal.timeout(1000) })
    .then((r) => r.json())
    .catch(() => undefined)) as T | undefined
}

/** What each running server of `nats` says about `stream`: its own name and the stream's detail. */
async function streamViews(
  nats: NatsHandle,
  stream: string,
): Promise<{ s: NatsServer; name?: string; d?: StreamDetail }[]> {
  const out: { s: NatsServer; name?: string; d?: StreamDetail }[] = []
  for (const s of nats.servers) {
    if (!s.running) continue
    const varz = await monitor<{ server_name?: string }>(s, '/varz')
    const jsz = await monitor<Jsz>(s, '/jsz?accounts=true&streams=true')
    let d: StreamDetail | undefined
    for (const acc of jsz?.account_details ?? []) for (const x of acc.stream_detail ?? []) if (x.name === stream) d = x
    out.push({ s, name: varz?.server_name, d })
  }
  return out
}

/**
 * The running server of a NATS cluster that the running servers name as leader of `stream`
 * (undefined while they name none, or name a server that is not running).
 */
export async function natsStreamLeader(nats: NatsHandle, stream: string): Promise<NatsServer | undefined> {
  const views = await streamViews(nats, stream)
  const leader = views.map((v) => v.d?.cluster?.leader).find((l) => l !== undefined)
  return leader === undefined ? undefined : views.find((v) => v.name === leader)?.s
}

/** True when the leader of JetStream stream `stream` reports every replica current (caught up). */
export async function natsStreamCurrent(nats: NatsHandle, stream: string): Promise<boolean> {
  for (const v of await streamViews(nats, stream)) {
    const c = v.d?.cluster
    if (c?.leader === undefined || c.leader !== v.name) continue
    return (c.replicas ?? []).length > 0 && (c.replicas ?? []).every((r) => r.current === true)
  }
  return false
}
