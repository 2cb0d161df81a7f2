/**
 * Cluster events: what processes see happen to the cluster (a boss elected, active or deposed,
 * workers joining and leaving, jobs re-dispatched because their worker died, fenced writes and
 * dispatches a worker refused as stale, lost
 * connections), typed, kept in one JetStream stream per cluster for BOSUN_EVENT_RETENTION_MS so the
 * leadership history survives every process (README "Observing the cluster"). Events are for people
 * and dashboards: nothing in bosun decides anything from them.
 *
 * Stream `bosun_<cluster>_events`, subject `bosun.<cluster>.cev.<type>` (type with its dot, e.g.
 * `…cev.boss.elected`), so a reader can filter one type or all boss events (`…cev.boss.>`).
 */

export const CLUSTER_EVENT_TYPES = [
  'boss.elected',
  'boss.active',
  'boss.deposed',
  'worker.joined',
  'worker.left',
  'job.redispatched',
  'write.fenced',
  'dispatch.refused',
  'connection.lost',
  'connection.restored',
] as const
export type ClusterEventType = (typeof CLUSTER_EVENT_TYPES)[number]

const TYPES: ReadonlySet<string> = new Set(CLUSTER_EVENT_TYPES)

export function isClusterEventType(x: unknown): x is ClusterEventType {
  return typeof x === 'string' && TYPES.has(x)
}

/** The process that saw it. */
export interface EventSource {
  id: string
  host: string
  pid: number
  role: string
}

/** One event as stored (without `id`) and as served (with `id`: its stream sequence, as a string). */
export interface ClusterEvent {
  id: string
  type: ClusterEventType
  /** ISO-8601 time the source saw it happen. */
  at: string
  source: EventSource
  /** The boss epoch it concerns, where there is one. */
  epoch?: number
  data: Record<string, unknown>
}

/** What each type's `data` carries (documented in README; readers treat every field as optional). */
export interface EventData {
  'boss.elected': {
    boss: { id: string; host: string; pid: number }
    /** Its ZooKeeper session timeout: how long a crash of it can go unnoticed. */
    sessionTimeoutMs: number
  }
  'boss.active': {
    /** Election → dispatching, ms. */
    takeoverMs: number
    /** When the term started dispatching (its first dispatch, if anything was queued). */
    dispatchingAt: string
    adopted: number
    requeued: number
    /** The newest older boss's epoch and last dispatch as the workers saw it (inventory), when any saw one. */
    predecessorEpoch?: number
    predecessorLastDispatchAt?: string
  }
  'boss.deposed': { reason: string }
  'worker.joined': { worker: string; host?: string; pid?: number }
  'worker.left': { worker: string; reason: string }
  'job.redispatched': { worker: string; jobs: number; reason: string }
  'write.fenced': { reason: string }
  /** A worker refused messages of a boss epoch: `stale` (older than its newest) or `unknown` (ahead of ZooKeeper). */
  'dispatch.refused': {
    what: 'dispatch' | 'inventory'
    epoch: number
    newest: number
    reason: 'stale-epoch' | 'unknown-epoch'
    count: number
  }
  'connection.lost': { server: 'zookeeper' | 'nats'; reason?: string }
  'connection.restored': { server: 'zookeeper' | 'nats'; downMs?: number }
}

/** Subject prefix of a cluster's events (`bosun.<cluster>.cev`). */
export function eventSubjectPrefix(cluster: string): string {
  return `bosun.${cluster}.cev`
}

export function eventSubject(cluster: string, type: ClusterEventType): string {
  return `${eventSubjectPrefix(cluster)}.${type}`
}

export function eventStreamName(cluster: string): string {
  return `bosun_${cluster}_events`
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/

/**
 * A stored event read back, with its sequence as id; `undefined` for anything else (garbage on the
 * stream is dropped by the reader with a warning, never served).
 */
export function parseStoredEvent(x: unknown, seq: number): ClusterEvent | undefined {
  if (!isObject(x) || !isClusterEventType(x.type) || typeof x.at !== 'string' || !ISO.test(x.at)) return undefined
  const s = x.source
  if (!isObject(s) || typeof s.id !== 'string' || typeof s.host !== 'string' || typeof s.role !== 'string')
    return undefined
  if (typeof s.pid !== 'number' || !Number.isSafeInteger(s.pid)) return undefined
  if (!isObject(x.data)) return undefined
  const ev: ClusterEvent = {
    id: String(seq),
    type: x.type,
    at: x.at,
    source: { id: s.id, host: s.host, pid: s.pid, role: s.role },
    data: x.data,
  }
  if (typeof x.epoch === 'number' && Number.isSafeInteger(x.epoch) && x.epoch >= 0) ev.epoch = x.epoch
  return ev
}
