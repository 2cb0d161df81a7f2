/**
 * ZkSession: the one ZooKeeper session of a process, as a small state machine
 * (`latent → connecting → connected ⇄ suspended → lost → connecting … → closing → closed`).
 *
 * It emits 'state' with a ConnectionState — the one place recipes react to (Curator's
 * ConnectionStateListener):
 * - 'connected': a session is ready (first start, or a NEW session after a loss): register everything;
 * - 'suspended': the connection is in doubt (socket dropped, or our liveness probe got no answer):
 *   a leader stops acting at once;
 * - 'reconnected': the same session is confirmed again;
 * - 'lost': the session is gone (expired, or unconfirmed longer than the session timeout); a new
 *   client is being built and 'connected' follows.
 *
 * Hazards of node-zookeeper-client handled here (README "Design notes": recipe 8, client hazards): no
 * read timeout (own probe every third of the session timeout), a dead client after expiry (replaced),
 * requests queued while disconnected (only a connected client gets them; every call has a timeout),
 * unknown error codes (client-patch.ts), `close()` with the connection lost before or during it (waits
 * for the reconnect, deletes our ephemerals first), a wiped server ("client has seen zxid …": given up).
 */
import { performance } from 'node:perf_hooks'
import type { ConnectionState } from '../contracts.js'
import { errors } from '../errors.js'
import type { Logger } from '../logger.js'
import { sleep } from '../retry.js'
import { ClientHandle, type ClientEvent } from './client-handle.js'
import { ConnectedWaiters } from './connected-waiters.js'
import { onClientGuardError } from './client-patch.js'
import { ZkOperations, type ClientRun, type CallOptions } from './operations.js'
import { ANSWERED_CODES, assertNodeName, aclFor, isZkError, toZkError, zkCodeOf } from './primitives.js'

/** The session's own lifecycle (ConnectionState is what it tells the recipes). */
export type SessionPhase = 'latent' | 'connecting' | 'connected' | 'suspended' | 'lost' | 'closing' | 'closed'

export interface ZkSessionOptions {
  /** host:port list without the chroot. */
  servers: string
  /** Chroot handled by bosun ('' or '/path'); the base path is `<chroot>/<cluster>`. */
  chroot?: string
  sessionTimeoutMs: number
  /** Digest credentials `user:pass`; every znode then gets [digest ALL for us, world READ]. */
  auth?: string | undefined
  /** Cluster name: the last element of the base path. */
  cluster: string
  logger: Logger
  /** Timeout of every request. @defaultValue max(2000, sessionTimeoutMs) */
  requestTimeoutMs?: number
  /** How long start() waits for the first connection. @defaultValue max(10000, 2 × sessionTimeoutMs) */
  connectTimeoutMs?: number
  /** How long close() waits for a reconnect to delete our ephemerals. @defaultValue min(sessionTimeoutMs, 10000) */
  closeWaitMs?: number
}

/** close(): rounds of removing our ephemerals (a lost connection fails a round), and the pause between. */
const CLOSE_REMOVE_ROUNDS = 5
const CLOSE_RETRY_MS = 50

export class ZkSession extends ZkOperations {
  /** `<chroot>/<cluster>`: every bosun znode lives below it. */
  readonly basePath: string
  readonly sessionTimeoutMs: number
  readonly requestTimeoutMs: number
  private readonly log: Logger
  private readonly connectTimeoutMs: number
  private readonly closeWaitMs: number
  private phase: SessionPhase = 'latent'
  private handle: ClientHandle | undefined
  private gen = 0
  private currentSessionId = ''
  private lastConfirmedAt = 0
  /** Round trip (ms) of the last answered request or liveness probe; undefined before the first (metrics). */
  roundTripMs: number | undefined
  private probeInFlight = false
  private ticker: NodeJS.Timeout | undefined
  private readonly waiters = new ConnectedWaiters()
  private closing: Promise<void> | undefined

  constructor(private readonly opts: ZkSessionOptions) {
    super(aclFor(opts.auth))
    assertNodeName('cluster', opts.cluster)
    const chroot = (opts.chroot ?? '').replace(/\/+$/, '')
    if (chroot !== '' && !/^\/[^\s]*$/.test(chroot)) throw errors.CONFIG(`invalid ZooKeeper chroot: ${chroot}`)
    this.basePath = `${chroot}/${opts.cluster}`
    this.sessionTimeoutMs = opts.sessionTimeoutMs
    this.requestTimeoutMs = opts.requestTimeoutMs ?? Math.max(2000, opts.sessionTimeoutMs)
    this.connectTimeoutMs = opts.connectTimeoutMs ?? Math.max(10_000, 2 * opts.sessionTimeoutMs)
    this.closeWaitMs = opts.closeWaitMs ?? Math.min(opts.sessionTimeoutMs, 10_000)
    this.log = opts.logger.child({ component: 'zk-session' })
    onClientGuardError((err) => this.log.error({ err }, 'ZooKeeper client data handler threw; connection dropped'))
  }

  /** The session's lifecycle phase. */
  get state(): SessionPhase {
    return this.phase
  }

  /** Current session id (16 hex digits), '' before the first connection. */
  get sessionId(): string {
    return this.currentSessionId
  }

  /** Increments with every new session; recipes pin calls to the session they started on. */
  get generation(): number {
    return this.gen
  }

  /** Requests sent (probes excluded): a cache hit must leave it unchanged. */
  get requestCount(): number {
    return this.stats.requests
  }

  /** `<basePath>/<a>/<b>…` */
  path(...segments: string[]): string {
    return [this.basePath, ...segments].join('/')
  }

  /** Connect, create the base path; rejects with ZK_NOT_CONNECTED when no server answers in time. */
  async start(): Promise<void> {
    if (this.phase !== 'latent') throw errors.ALREADY_STARTED('ZooKeeper session already started')
    this.phase = 'connecting'
    this.newClient()
    try {
      await this.whenClientConnected(performance.now() + this.connectTimeoutMs)
    } catch (err) {
      this.handle?.destroy()
      this.handle = undefined
      if (this.phase === 'connecting') this.phase = 'closed'
      throw errors.ZK_NOT_CONNECTED(
        `could not connect to ZooKeeper at ${this.opts.servers} within ${this.connectTimeoutMs} ms`,
        { cause: err },
      )
    }
    try {
      await this.establish(this.gen)
    } catch (err) {
      this.handle?.destroy()
      this.handle = undefined
      this.phase = 'closed'
      throw err
    }
    this.ticker = setInterval(() => this.tick(), Math.max(20, Math.floor(this.sessionTimeoutMs / 10)))
    this.ticker.unref()
  }

  /** True while connected and the session was confirmed within half its timeout (leaders check this). */
  isConfirmed(): boolean {
    return this.phase === 'connected' && performance.now() - this.lastConfirmedAt < this.sessionTimeoutMs / 2
  }

  /** Close the socket now (the client reconnects to the same session); a test seam and a read timeout. */
  dropConnection(): void {
    this.handle?.dropConnection()
  }

  /** The server port of the live connection, if any. */
  connectedPort(): number | undefined {
    return this.handle?.connected ? this.handle.remotePort() : undefined
  }

  /** Session id and password of the live session (tests use them to expire it from outside). */
  credentials(): { sessionId: Buffer; password: Buffer } | undefined {
    if (!this.handle?.connected) return undefined
    return { sessionId: this.handle.client.getSessionId(), password: this.handle.sessionPassword() }
  }

  /**
   * Delete our tracked ephemerals (waiting up to closeWaitMs for a reconnect if needed), then close
   * the session. Idempotent; bounded in time.
   */
  close(): Promise<void> {
    this.closing ??= this.doClose()
    return this.closing
  }

  private async doClose(): Promise<void> {
    const wasLive = this.phase !== 'latent' && this.phase !== 'closed'
    this.phase = 'closing'
    this.emit('closing')
    if (this.ticker) clearInterval(this.ticker)
    const handle = this.handle
    if (handle && wasLive) {
      await this.removeEphemerals(handle, performance.now() + this.closeWaitMs)
      await handle.closeGracefully(Math.min(this.requestTimeoutMs, 2000))
    }
    this.handle?.destroy()
    this.handle = undefined
    this.phase = 'closed'
    this.waiters.closed()
    this.log.debug('closed')
    this.emit('closed')
  }

  /** Delete our ephemerals by `deadline`; a lost connection (before or during the removes) is waited for. */
  private async removeEphemerals(handle: ClientHandle, deadline: number): Promise<void> {
    let pending = this.trackedEphemerals()
    const timeoutMs = Math.min(this.requestTimeoutMs, 2000)
    for (let round = 0; pending.length > 0 && round < CLOSE_REMOVE_ROUNDS; round++) {
      if (round > 0) await sleep(CLOSE_RETRY_MS)
      if (!handle.connected) await this.whenClientConnected(deadline).catch(() => undefined)
      if (!handle.connected || performance.now() >= deadline) return
      const results = await Promise.allSettled(pending.map((p) => this.removeIfExists(p, -1, { timeoutMs })))
      pending = pending.filter((_, i) => results[i]!.status === 'rejected')
    }
  }

  // ---- state machine -------------------------------------------------------------------------

  private newClient(): void {
    const gen = ++this.gen
    this.handle = new ClientHandle({
      servers: this.opts.servers,
      sessionTimeoutMs: this.sessionTimeoutMs,
      auth: this.opts.auth,
      spinDelayMs: Math.min(200, Math.max(20, Math.floor(this.sessionTimeoutMs / 10))),
      handshakeTimeoutMs: Math.min(2000, Math.max(500, Math.floor(this.sessionTimeoutMs / 3))),
      onEvent: (event) => this.onClientEvent(gen, event),
    })
  }

  private onClientEvent(gen: number, event: ClientEvent): void {
    if (gen !== this.gen) return
    if (event === 'connected') this.waiters.connected()
    if (this.phase === 'closing' || this.phase === 'closed') return
    switch (event) {
      case 'connected':
        this.currentSessionId = this.handle?.sessionId() ?? ''
        this.lastConfirmedAt = performance.now()
        if (this.phase === 'suspended') this.setPhase('connected', 'reconnected')
        return
      case 'disconnected':
        if (this.phase === 'connected') this.suspend('disconnected')
        return
      case 'expired':
        this.loseSession('session expired')
        return
      case 'authFailed':
        this.log.error('ZooKeeper authentication failed')
        this.loseSession('authentication failed', 1000)
    }
  }

  private setPhase(phase: SessionPhase, emit?: ConnectionState): void {
    this.phase = phase
    if (emit) {
      this.log.info({ state: emit, sessionId: this.currentSessionId }, `ZooKeeper ${emit}`)
      this.emit('state', emit)
    }
  }

  private suspend(reason: string): void {
    this.log.warn({ reason }, 'ZooKeeper connection in doubt')
    this.setPhase('suspended', 'suspended')
  }

  /** Give the session up: destroy the dead client, announce 'lost', build a new client. */
  private loseSession(reason: string, delayMs = 0): void {
    if (this.phase === 'lost' || this.phase === 'closing' || this.phase === 'closed' || this.phase === 'latent') return
    if (this.phase === 'connecting' && this.stats.sessions === 0) return // start() handles its own failure
    const old = this.handle
    this.handle = undefined
    this.gen++
    this.forgetEphemerals()
    void old?.closeGracefully(200)
    this.log.warn({ reason, sessionId: this.currentSessionId }, 'ZooKeeper session lost')
    this.currentSessionId = ''
    this.setPhase('lost', 'lost')
    const reconnect = () => {
      if (this.phase !== 'lost') return
      this.phase = 'connecting'
      this.newClient()
      const gen = this.gen
      this.whenClientConnected(Number.POSITIVE_INFINITY).then(
        () => this.establish(gen),
        () => undefined,
      )
    }
    if (delayMs > 0) setTimeout(reconnect, delayMs).unref()
    else reconnect()
  }

  /** The client is connected: make sure the base path exists, then announce the session. */
  private async establish(gen: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (gen !== this.gen || this.phase !== 'connecting') return
      try {
        await this.mkdirp(this.basePath, { generation: gen })
        break
      } catch (err) {
        if (isZkError(err, 'NO_AUTH')) throw errors.ZK(`no permission to create ${this.basePath}`, { cause: err })
        if (attempt >= 2 && this.stats.sessions === 0) throw err
        this.log.warn({ err, attempt }, 'could not create the base path; retrying')
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    if (gen !== this.gen || this.phase !== 'connecting') return
    this.stats.sessions++
    this.setPhase('connected', 'connected')
  }

  /** Liveness: probe when idle, suspend when unconfirmed for half the timeout, lose after all of it. */
  private tick(): void {
    if (this.phase !== 'connected' && this.phase !== 'suspended') return
    const age = performance.now() - this.lastConfirmedAt
    if (age > this.sessionTimeoutMs) return this.loseSession(`unconfirmed for ${Math.round(age)} ms`)
    if (age > this.sessionTimeoutMs / 2 && this.phase === 'connected') {
      this.suspend(`no answer for ${Math.round(age)} ms`)
      this.handle?.dropConnection() // our read timeout: reconnect, possibly to another member
      return
    }
    if (age >= this.sessionTimeoutMs / 5) this.probe()
  }

  private probe(): void {
    const handle = this.handle
    if (this.probeInFlight || !handle?.connected) return
    this.probeInFlight = true
    this.stats.probes++
    const sentAt = performance.now()
    const gen = this.gen
    const timer = setTimeout(() => (this.probeInFlight = false), this.sessionTimeoutMs / 2)
    timer.unref()
    handle.client.exists('/', (err) => {
      clearTimeout(timer)
      this.probeInFlight = false
      if (err || gen !== this.gen) return
      this.confirm(sentAt)
      if (this.phase === 'suspended' && handle.connected) this.setPhase('connected', 'reconnected')
    })
  }

  private confirm(sentAt: number): void {
    this.roundTripMs = performance.now() - sentAt
    if (sentAt > this.lastConfirmedAt) this.lastConfirmedAt = sentAt
  }

  private whenClientConnected(deadline: number): Promise<void> {
    if (this.handle?.connected) return Promise.resolve()
    if (this.phase === 'closed') return Promise.reject(errors.CLOSED('ZooKeeper session closed'))
    return this.waiters.wait(deadline)
  }

  /**
   * Run one request: only on a connected client (never queued in the client while disconnected),
   * with its own timeout, pinned to a session generation when asked.
   */
  protected async call<T>(op: string, path: string, run: ClientRun<T>, opts: CallOptions = {}): Promise<T> {
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs
    const deadline = performance.now() + timeoutMs
    const pinned = opts.generation
    if (this.phase === 'closed' || this.phase === 'latent') throw errors.CLOSED(`ZooKeeper session is ${this.phase}`)
    if (pinned !== undefined && pinned !== this.gen)
      throw errors.ZK_SESSION_LOST(`${op} ${path}: the session it belongs to is gone`)
    if (!this.handle?.connected) {
      try {
        await this.whenClientConnected(deadline)
      } catch (err) {
        throw errors.ZK_TIMEOUT(`${op} ${path}: not connected to ZooKeeper within ${timeoutMs} ms`, {
          cause: err,
          details: { op, path, sent: false },
        })
      }
      if (pinned !== undefined && pinned !== this.gen)
        throw errors.ZK_SESSION_LOST(`${op} ${path}: the session it belongs to is gone`)
    }
    const handle = this.handle
    if (!handle) throw errors.ZK_NOT_CONNECTED(`${op} ${path}: no ZooKeeper client`)
    const gen = this.gen
    this.stats.requests++
    const sentAt = performance.now()
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(
        () => {
          settled = true
          reject(
            errors.ZK_TIMEOUT(`${op} ${path}: no answer within ${timeoutMs} ms`, { details: { op, path, sent: true } }),
          )
        },
        Math.max(1, deadline - sentAt),
      )
      try {
        run(handle.client, (err, value) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          const code = err ? zkCodeOf(toZkError(op, path, err)) : undefined
          if (gen === this.gen && (!err || (code !== undefined && ANSWERED_CODES.has(code)))) this.confirm(sentAt)
          if (err) reject(toZkError(op, path, err))
          else resolve(value as T)
        })
      } catch (err) {
        settled = true
        clearTimeout(timer)
        reject(errors.ZK(`${op} ${path}: ${(err as Error).message}`, { cause: err, details: { op, path } }))
      }
    })
  }
}
