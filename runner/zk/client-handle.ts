/**
 * One node-zookeeper-client instance and the little the session needs from it: connect with
 * `retries: 0` (no blind retries: README "Design notes", recipe 3), know whether it is connected right now,
 * drop the socket on demand (our read timeout: the client has none), and destroy it for good
 * (an expired client is dead forever, client hazard 2: the session builds a new one). The client has no timeout
 * on the handshake after the TCP connect (a server that is still starting can accept the socket and
 * never answer): a watchdog drops a socket that has not completed its handshake in time.
 */
import zookeeper from 'node-zookeeper-client'

export type ClientEvent = 'connected' | 'disconnected' | 'expired' | 'authFailed'

/** The client internals touched here (ConnectionManager of 1.1.3). */
interface ConnectionManagerInternals {
  socket?: { destroy(): void; remotePort?: number }
  connect: () => void
  connectTimeoutHandler?: NodeJS.Timeout | null
}

export interface ClientHandleOptions {
  servers: string
  sessionTimeoutMs: number
  auth: string | undefined
  /** Pause between rounds over all servers (the client's spinDelay). */
  spinDelayMs: number
  /** A socket that has not completed the ZooKeeper handshake within this is dropped. */
  handshakeTimeoutMs: number
  onEvent(event: ClientEvent): void
}

export class ClientHandle {
  readonly client: zookeeper.Client
  /** True between SYNC_CONNECTED and the next disconnect/expiry/destroy. */
  connected = false
  private destroyed = false
  private readonly watchdog: NodeJS.Timeout
  private watchedSocket: unknown
  private watchedSince = 0

  constructor(opts: ClientHandleOptions) {
    this.client = zookeeper.createClient(opts.servers, {
      sessionTimeout: opts.sessionTimeoutMs,
      retries: 0,
      spinDelay: opts.spinDelayMs,
    })
    if (opts.auth) this.client.addAuthInfo('digest', Buffer.from(opts.auth))
    this.client.on('state', (state: zookeeper.State) => {
      if (this.destroyed) return
      const event = toClientEvent(state)
      if (event === undefined) return
      this.connected = event === 'connected'
      opts.onEvent(event)
    })
    this.client.connect()
    this.watchdog = setInterval(
      () => this.checkHandshake(opts.handshakeTimeoutMs),
      Math.max(50, Math.floor(opts.handshakeTimeoutMs / 4)),
    )
    this.watchdog.unref()
  }

  private checkHandshake(timeoutMs: number): void {
    const socket = this.manager.socket
    if (this.connected || !socket) {
      this.watchedSocket = undefined
      return
    }
    if (socket !== this.watchedSocket) {
      this.watchedSocket = socket
      this.watchedSince = Date.now()
    } else if (Date.now() - this.watchedSince > timeoutMs) {
      this.watchedSocket = undefined
      this.dropConnection()
    }
  }

  private get manager(): ConnectionManagerInternals {
    return (this.client as unknown as { connectionManager: ConnectionManagerInternals }).connectionManager
  }

  /** Session id as 16 hex digits (meaningful once connected). */
  sessionId(): string {
    return this.client.getSessionId().toString('hex')
  }

  sessionPassword(): Buffer {
    return this.client.getSessionPassword()
  }

  /** The negotiated session timeout (the server clamps what we asked for). */
  negotiatedTimeoutMs(): number {
    return this.client.getSessionTimeout()
  }

  /** The server port the socket is connected to (tests use it to pick the member to kill). */
  remotePort(): number | undefined {
    return this.manager.socket?.remotePort
  }

  /** Close the socket: pending requests fail with CONNECTION_LOSS and the client reconnects. */
  dropConnection(): void {
    try {
      this.manager.socket?.destroy()
    } catch {
      /* already gone */
    }
  }

  /**
   * Ask the server to close the session (deletes its ephemerals) and wait up to `waitMs` for the
   * socket to close; then destroy whatever is left.
   */
  async closeGracefully(waitMs: number): Promise<void> {
    if (this.destroyed) return
    if (this.connected) {
      const closed = new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, waitMs)
        this.client.once('disconnected', () => {
          clearTimeout(timer)
          resolve()
        })
      })
      try {
        this.client.close()
      } catch {
        /* state machine refused: destroy below */
      }
      await closed
    }
    this.destroy()
  }

  /** Stop for good: no reconnect, no events, socket closed. Idempotent. */
  destroy(): void {
    if (this.destroyed) return
    this.destroyed = true
    this.connected = false
    clearInterval(this.watchdog)
    const manager = this.manager
    manager.connect = () => {}
    try {
      this.client.close()
    } catch {
      /* ignore */
    }
    if (manager.connectTimeoutHandler) clearTimeout(manager.connectTimeoutHandler)
    this.dropConnection()
    this.client.removeAllListeners()
  }
}

function toClientEvent(state: zookeeper.State): ClientEvent | undefined {
  switch (state.code) {
    case zookeeper.State.SYNC_CONNECTED.code:
    case zookeeper.State.CONNECTED_READ_ONLY.code:
      return 'connected'
    case zookeeper.State.DISCONNECTED.code:
      return 'disconnected'
    case zookeeper.State.EXPIRED.code:
      return 'expired'
    case zookeeper.State.AUTH_FAILED.code:
      return 'authFailed'
    default:
      return undefined
  }
}
