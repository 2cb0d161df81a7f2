/**
 * ZkRegistry: the seed's register / getCapable / nsendCapable / getPeers / nsendPeers (README "Design notes", seed
 * defects 1, 5 and 6) on Curator's ServiceDiscovery pattern (recipe 9).
 *
 * Layout: `<base>/services/<service>/<nodeId>` and `<base>/nodes/<nodeId>`, ephemeral, data
 * `{ v: 1, id, address, host, pid, meta, registeredAt }`. What this process registered is kept as
 * desired state by OwnNodes (own-nodes.ts): written again after every new session and reconnect, and
 * at once when someone else deletes or changes one of our znodes while our session lives. Lookups are
 * served from watch-invalidated ChildrenCaches (no request on a hit), rebuilt on the same events.
 * States: `open → closed`.
 */
import { EventEmitter } from 'node:events'
import type { ConnectionState, Meta, PeerEntry, Registry, ServiceEntry } from '../contracts.js'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import { ChildrenCache, type ChildrenCacheHooks } from './children-cache.js'
import { OwnNodes } from './own-nodes.js'
import { assertNodeName } from './primitives.js'
import { encodeRegistration, parseRegistration, sameEntries, type Identity } from './records.js'
import type { ZkSession } from './session.js'

/** Sends one message (the NATS transport's `send`, injected). */
export type SendFn = (address: string, type: string, body: unknown) => unknown

export type RegistryState = 'open' | 'closed'

export interface ZkRegistryOptions {
  session: ZkSession
  nodeId: string
  host: string
  pid: number
  send: SendFn
  logger: Logger
  /** Test seams inside cache loads. */
  hooks?: ChildrenCacheHooks
}

interface Registration {
  address: string
  meta: Meta
  registeredAt: string
}

const MAX_META_BYTES = 64 * 1024

export class ZkRegistry extends EventEmitter implements Registry {
  private phase: RegistryState = 'open'
  private readonly session: ZkSession
  private readonly who: Identity
  private readonly log: Logger
  private readonly registrations = new Map<string, Registration>()
  private announcement: Registration | undefined
  private readonly caches = new Map<string, ChildrenCache<ServiceEntry>>()
  private peersCache: ChildrenCache<PeerEntry> | undefined
  private readonly own: OwnNodes
  private readonly onState = (state: ConnectionState) => this.handleStateChange(state)

  constructor(private readonly opts: ZkRegistryOptions) {
    super()
    assertNodeName('node id', opts.nodeId)
    this.session = opts.session
    this.who = { id: opts.nodeId, host: opts.host, pid: opts.pid }
    this.log = opts.logger.child({ component: 'zk-registry' })
    this.own = new OwnNodes(this.session, this.log)
    this.session.on('state', this.onState)
  }

  get state(): RegistryState {
    return this.phase
  }

  /** Advertise `address` under `service` (ephemeral; re-registered after a session loss). */
  async register(service: string, address: string, meta: Meta = {}): Promise<void> {
    this.assertOpen()
    assertNodeName('service', service)
    checkAddress(address)
    checkMeta(meta)
    const reg = { address, meta, registeredAt: new Date().toISOString() }
    this.registrations.set(service, reg)
    await this.own.set(this.servicePath(service), this.encode(reg))
  }

  /** Replace the metadata of an existing registration. */
  async updateMeta(service: string, meta: Meta): Promise<void> {
    this.assertOpen()
    checkMeta(meta)
    const reg = this.registrations.get(service)
    if (!reg) throw errors.VALIDATION(`not registered: ${service}`)
    reg.meta = meta
    await this.own.set(this.servicePath(service), this.encode(reg))
  }

  /** Remove our registration (never restored); other caches drop it within one watch round trip. */
  async unregister(service: string): Promise<void> {
    this.assertOpen()
    assertNodeName('service', service)
    this.registrations.delete(service)
    await this.own.forget(this.servicePath(service))
  }

  /** All live registrations of `service`, from the cache (no request on a hit). */
  async getCapable(service: string): Promise<ServiceEntry[]> {
    this.assertOpen()
    assertNodeName('service', service)
    const cache = this.cacheFor(service)
    return cache.isReady ? cache.get() : cache.read()
  }

  /** Send to every process advertising `service`; returns how many were addressed. */
  async nsendCapable(service: string, type: string, body: unknown): Promise<number> {
    const entries = await this.getCapable(service)
    for (const e of entries) this.sendTo(e.address, type, body)
    return entries.length
  }

  /** Advertise this node (`<base>/nodes/<nodeId>`) for node discovery. */
  async announce(address: string, meta: Meta = {}): Promise<void> {
    this.assertOpen()
    checkAddress(address)
    checkMeta(meta)
    this.announcement = { address, meta, registeredAt: new Date().toISOString() }
    await this.own.set(this.session.path('nodes', this.who.id), this.encode(this.announcement))
  }

  /** Every live node of the cluster (cached, watched). */
  async getPeers(): Promise<PeerEntry[]> {
    this.assertOpen()
    this.peersCache ??= this.newCache(this.session.path('nodes'), (values) => this.emit('peers', values))
    return this.peersCache.isReady ? this.peersCache.get() : this.peersCache.read()
  }

  /** Send to the process registered as `service` on every live node that has one. */
  async nsendPeers(service: string, type: string, body: unknown): Promise<number> {
    const [peers, entries] = await Promise.all([this.getPeers(), this.getCapable(service)])
    const live = new Set(peers.map((p) => p.id))
    const targets = entries.filter((e) => live.has(e.id))
    for (const e of targets) this.sendTo(e.address, type, body)
    return targets.length
  }

  /** Stop watching and delete our registrations (best effort, bounded). Idempotent. */
  async close(): Promise<void> {
    if (this.phase === 'closed') return
    this.phase = 'closed'
    this.session.off('state', this.onState)
    for (const cache of this.caches.values()) cache.close()
    this.peersCache?.close()
    this.registrations.clear()
    this.announcement = undefined
    await this.own.close()
  }

  override on(event: 'change', listener: (service: string, entries: ServiceEntry[]) => void): this
  override on(event: 'peers', listener: (peers: PeerEntry[]) => void): this
  override on(event: string, listener: Parameters<EventEmitter['on']>[1]): this {
    return super.on(event, listener)
  }

  override off(event: 'change', listener: (service: string, entries: ServiceEntry[]) => void): this
  override off(event: 'peers', listener: (peers: PeerEntry[]) => void): this
  override off(event: string, listener: Parameters<EventEmitter['off']>[1]): this {
    return super.off(event, listener)
  }

  // ---- internals -----------------------------------------------------------------------------

  /** The one place the registry reacts to the connection: restore our znodes, rebuild caches. */
  private handleStateChange(state: ConnectionState): void {
    if (this.phase === 'closed') return
    if (state !== 'connected' && state !== 'reconnected') return
    this.own.restoreAll()
    for (const cache of this.caches.values()) cache.reset()
    this.peersCache?.reset()
  }

  private servicePath(service: string): string {
    return this.session.path('services', service, this.who.id)
  }

  private cacheFor(service: string): ChildrenCache<ServiceEntry> {
    let cache = this.caches.get(service)
    if (!cache) {
      cache = this.newCache(this.session.path('services', service), (values) => this.emit('change', service, values))
      this.caches.set(service, cache)
    }
    return cache
  }

  private newCache(dir: string, onChange: (values: ServiceEntry[]) => void): ChildrenCache<ServiceEntry> {
    return new ChildrenCache<ServiceEntry>({
      session: this.session,
      dir,
      parse: parseRegistration,
      same: sameEntries,
      onChange,
      logger: this.log,
      hooks: this.opts.hooks,
    })
  }

  private encode(reg: Registration): Buffer {
    return encodeRegistration(this.who, reg.address, reg.meta, reg.registeredAt)
  }

  private sendTo(address: string, type: string, body: unknown): void {
    try {
      this.opts.send(address, type, body)
    } catch (err) {
      this.log.warn({ err, address, type }, 'send failed')
    }
  }

  private assertOpen(): void {
    if (this.phase === 'closed') throw errors.CLOSED('registry is closed')
  }
}

function checkAddress(address: unknown): asserts address is string {
  if (typeof address !== 'string' || address.length === 0 || address.length > 512)
    throw errors.VALIDATION('address must be a non-empty string')
}

function checkMeta(meta: unknown): asserts meta is Meta {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta))
    throw errors.VALIDATION('meta must be an object')
  let json: string
  try {
    json = JSON.stringify(meta)
  } catch (err) {
    throw errors.VALIDATION('meta is not JSON-serialisable', { cause: err })
  }
  if (Buffer.byteLength(json) > MAX_META_BYTES) throw errors.VALIDATION(`meta is larger than ${MAX_META_BYTES} bytes`)
}
