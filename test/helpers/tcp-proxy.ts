/**
 * A small TCP proxy for partition tests: put it between one process and one server (e.g. a worker's
 * ZK_CONNECT or the API's NATS_URL) and break that link only, while everything else stays connected.
 *
 * - `cut()`: every connection is reset (RST) at once and new ones are reset as soon as they arrive
 *   (the peer sees "connection refused/reset", like a firewall rejecting packets);
 * - `stall()`: no byte is forwarded in either direction, sockets stay open (a black hole: the peer
 *   only notices through its own timeouts); new connections are accepted and held;
 * - `heal()`: forward again (stalled bytes are delivered late, like TCP retransmission after a
 *   partition heals; held connections are connected to the target);
 * - `close()`: reset everything and stop listening. Idempotent.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export type ProxyMode = 'open' | 'cut' | 'stalled' | 'closed'

export interface TcpProxy {
  /** Port the proxy listens on (127.0.0.1). */
  readonly port: number
  /** `127.0.0.1:<port>`: use it in place of the target's address. */
  readonly address: string
  readonly mode: ProxyMode
  /** Client connections currently open through the proxy. */
  readonly connections: number
  /** Connections accepted since start (refused ones included). */
  readonly accepted: number
  /** Reset every connection and refuse new ones until heal(). */
  cut(): void
  /** Stop forwarding bytes both ways; keep sockets open (and hold new ones) until heal(). */
  stall(): void
  /** Forward again. */
  heal(): void
  /** Reset every connection and stop listening. Idempotent. */
  close(): Promise<void>
}

interface Link {
  client: Socket
  upstream: Socket | undefined
}

function reset(s: Socket | undefined): void {
  if (!s || s.destroyed) return
  // resetAndDestroy() waits for a socket still connecting, and on a socket already ended (shutdown
  // requested) libuv refuses the reset and the handle is never closed: plain destroy() for those.
  if (s.connecting || s.pending || s.writableEnded) return void s.destroy()
  try {
    s.resetAndDestroy()
  } catch {
    s.destroy()
  }
}

class Proxy implements TcpProxy {
  private state: ProxyMode = 'open'
  private readonly links = new Set<Link>()
  private count = 0
  private closing: Promise<void> | undefined

  constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client))
  }

  get address(): string {
    return `127.0.0.1:${this.port}`
  }

  get mode(): ProxyMode {
    return this.state
  }

  get connections(): number {
    return this.links.size
  }

  get accepted(): number {
    return this.count
  }

  cut(): void {
    if (this.state === 'closed') return
    this.state = 'cut'
    for (const link of this.links) this.drop(link)
  }

  stall(): void {
    if (this.state === 'closed') return
    this.state = 'stalled'
    for (const link of this.links) {
      link.client.pause()
      link.upstream?.pause()
    }
  }

  heal(): void {
    if (this.state === 'closed') return
    this.state = 'open'
    for (const link of this.links) {
      if (!link.upstream) this.connectUpstream(link)
      else {
        link.client.resume()
        link.upstream.resume()
      }
    }
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.state = 'closed'
      for (const link of this.links) this.drop(link)
      this.server.close(() => resolve())
    })
    return this.closing
  }

  private accept(client: Socket): void {
    this.count++
    if (this.state === 'cut' || this.state === 'closed') return reset(client)
    client.setNoDelay(true)
    const link: Link = { client, upstream: undefined }
    this.links.add(link)
    client.on('error', () => this.drop(link))
    client.on('close', () => this.drop(link))
    if (this.state === 'stalled') client.pause()
    else this.connectUpstream(link)
  }

  private connectUpstream(link: Link): void {
    const upstream = connect({ host: this.target.host, port: this.target.port })
    upstream.setNoDelay(true)
    link.upstream = upstream
    upstream.on('error', () => this.drop(link))
    upstream.on('close', () => this.drop(link))
    this.forward(link, link.client, upstream)
    this.forward(link, upstream, link.client)
    upstream.on('end', () => link.client.end())
    link.client.on('end', () => upstream.end())
    if (this.state === 'stalled') upstream.pause()
    else link.client.resume()
  }

  /** Copy bytes `from` → `to` with backpressure; never resumes a stalled link. */
  private forward(link: Link, from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (to.destroyed) return
      if (!to.write(chunk)) {
        from.pause()
        to.once('drain', () => {
          if (this.state === 'open' && this.links.has(link)) from.resume()
        })
      }
    })
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return
    reset(link.client)
    reset(link.upstream)
  }
}

/** Start a proxy on a free 127.0.0.1 port forwarding to `target` (`host:port`, or the first of a comma list). */
export async function startTcpProxy(target: string | { host: string; port: number }): Promise<TcpProxy> {
  const t = typeof target === 'string' ? parseTarget(target) : target
  const server = createServer({ pauseOnConnect: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('proxy has no port')
  return new Proxy(server, addr.port, t)
}

function parseTarget(s: string): { host: string; port: number } {
  const first = s
    .replace(/^[a-z]+:\/\//, '')
    .split(',')[0]!
    .split('/')[0]!
  const i = first.lastIndexOf(':')
  const port = Number(first.slice(i + 1))
  if (i < 0 || !Number.isInteger(port)) throw new Error(`bad proxy target ${JSON.stringify(s)}`)
  return { host: first.slice(0, i), port }
}
