/**
 * The runtime's public contracts. Implementations live in zk/ (session, registry, election),
 * transport/ (NATS) and node.ts (bootstrap). Everything outside runner/ imports these through
 * runner/index.ts only.
 */
import type { EventEmitter } from 'node:events'
import type { Logger } from './logger.js'

/** The one connection state every recipe reacts to (Curator's ConnectionState). */
export type ConnectionState = 'connected' | 'suspended' | 'reconnected' | 'lost'

/** Arbitrary JSON-safe metadata attached to a registration. */
export type Meta = Record<string, unknown>

/** One registration of a service, as read from ZooKeeper (data is JSON with a version field). */
export interface ServiceEntry {
  /** The registering node's id (unique in the cluster). */
  readonly id: string
  /** The NATS address (subject) that reaches the registered process. */
  readonly address: string
  readonly host: string
  readonly pid: number
  readonly meta: Meta
  /** ISO-8601 time of registration. */
  readonly registeredAt: string
}

/** One live node (the seed's `controllers/<node>`). */
export type PeerEntry = ServiceEntry

/** Service registry with a watch-invalidated local cache (the seed's register/getCapable/nsendCapable). */
export interface Registry {
  /** Advertise `address` under `service` (ephemeral znode). Re-registers by itself after a session loss. */
  register(service: string, address: string, meta?: Meta): Promise<void>
  /** Replace the metadata of an existing registration. */
  updateMeta(service: string, meta: Meta): Promise<void>
  /** Remove our registration; other nodes' caches drop it within one watch round trip. */
  unregister(service: string): Promise<void>
  /** All live registrations of `service`, from the local cache (no ZooKeeper request on a hit). */
  getCapable(service: string): Promise<ServiceEntry[]>
  /** Send a message to every process advertising `service`; returns how many were addressed. */
  nsendCapable(service: string, type: string, body: unknown): Promise<number>
  /** Every live node of the cluster (node discovery). */
  getPeers(): Promise<PeerEntry[]>
  /** Send a message to the process registered as `service` on every live node that has one. */
  nsendPeers(service: string, type: string, body: unknown): Promise<number>
  /** Fires when the cached set of a watched service changes (including on another node's death). */
  on(event: 'change', listener: (service: string, entries: ServiceEntry[]) => void): this
  off(event: 'change', listener: (service: string, entries: ServiceEntry[]) => void): this
  /** Fires when the set of live nodes changes (once getPeers() has been called). */
  on(event: 'peers', listener: (peers: PeerEntry[]) => void): this
  off(event: 'peers', listener: (peers: PeerEntry[]) => void): this
}

/** The elected holder of a global name, as everyone sees it. */
export interface LeaderInfo {
  /** The leader's node id. */
  readonly id: string
  readonly address: string
  readonly host: string
  readonly pid: number
  /** Fencing epoch: strictly greater for every new leadership of this name. */
  readonly epoch: number
  /** ISO-8601 time the leadership began. */
  readonly since: string
}

/** Handed to onElected; `signal` aborts the moment leadership is in doubt (suspended) or lost. */
export interface Leadership {
  readonly name: string
  readonly epoch: number
  readonly since: string
  readonly signal: AbortSignal
  /** True while this process may act as leader (connected, ephemeralOwner checked, not deposed). */
  isCurrent(): boolean
}

export type DeposedReason = 'suspended' | 'lost' | 'resigned' | 'closed' | 'superseded'

export interface CandidateCallbacks {
  /** Runs when this process becomes the leader. Must stop acting when `leadership.signal` aborts. */
  onElected(leadership: Leadership): void | Promise<void>
  /** Fires at once when leadership ends or is in doubt; never with the process still acting. */
  onDeposed?(reason: DeposedReason, epoch: number): void
}

/** Election of globally unique processes (the seed's registerCandidate / whereisGlobal). */
export interface Election {
  /** Join the election for `name`; resolves with the current leader (possibly this process). */
  registerCandidate(name: string, address: string, callbacks: CandidateCallbacks): Promise<LeaderInfo | null>
  /** Leave the election (deletes our node at once: followers take over in milliseconds). */
  resign(name: string): Promise<void>
  /** The current leader of `name`, from the watch-invalidated cache; correct on non-candidates. */
  whereisGlobal(name: string): Promise<LeaderInfo | null>
  /** Fires when the leader of a name seen by this process changes (null: none). */
  on(event: 'leader', listener: (name: string, leader: LeaderInfo | null) => void): this
  off(event: 'leader', listener: (name: string, leader: LeaderInfo | null) => void): this
}

/** A typed message envelope on NATS. */
export interface Envelope<T = unknown> {
  readonly v: 1
  readonly type: string
  /** Sender's address. */
  readonly from: string
  /** Fencing epoch of a leader's message, when it acts as one. */
  readonly epoch?: number
  readonly body: T
}

export type TransportStatus = 'connected' | 'disconnected' | 'reconnecting' | 'reconnected' | 'closed'

export interface RequestOptions {
  timeoutMs?: number
  epoch?: number
}

/** Returns the reply body, or a promise of it. */
export type MessageHandler = (body: unknown, envelope: Envelope) => unknown

/** NATS message transport: every process has an address (subject). */
export interface Transport {
  /** This process's address. */
  readonly address: string
  readonly connected: boolean
  /** Fire-and-forget. Never throws for a closed/disconnected connection: returns false instead. */
  send(address: string, type: string, body: unknown, opts?: { epoch?: number }): boolean
  /** Request/reply with a timeout; rejects with REQUEST_TIMEOUT / NO_RESPONDERS / REMOTE. */
  request<R = unknown>(address: string, type: string, body: unknown, opts?: RequestOptions): Promise<R>
  /**
   * Handle messages of `type` sent to this process's address. The handler's return value is the
   * reply to a request; a thrown BosunError becomes a REMOTE error at the requester.
   */
  handle(type: string, handler: MessageHandler): void
  on(event: 'status', listener: (status: TransportStatus) => void): this
  off(event: 'status', listener: (status: TransportStatus) => void): this
  close(): Promise<void>
}

/** A bootstrapped bosun process: one ZooKeeper session, one NATS connection, the recipes on top. */
export interface BosunNode extends EventEmitter {
  readonly id: string
  readonly cluster: string
  readonly host: string
  readonly logger: Logger
  readonly registry: Registry
  readonly election: Election
  readonly transport: Transport
  /** True when ZooKeeper and NATS are both connected. */
  ready(): boolean
  close(): Promise<void>
}
