/**
 * A NATS-aware TCP proxy for one process's NATS link: it reads the client protocol the process sends
 * (`PUB`/`HPUB` with their payloads; every other operation passes through) and can *hold* the messages
 * published on chosen subjects — they are kept, in order, instead of reaching the server — while all
 * else flows: pings, subscriptions, replies, reads. `release()` sends what was held, in order, as if
 * the network had delayed it. A boss whose store writes and dispatches are held is a boss stopped in
 * the middle of a write or a dispatch: the test can depose it meanwhile and then let them land.
 * Server → client messages pass untouched unless the test asks to drop some (`dropToClient`): a
 * status a buggy server never sends, for instance (nats-server 2.9.10 ends some pull requests without
 * their `408`).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

/** One message held by the proxy. */
export interface HeldMessage {
  at: number
  subject: string
  /** The payload (after any headers). */
  payload: Buffer
}

export interface NatsHoldProxy {
  /** `nats://127.0.0.1:<port>`: give it to the process as NATS_URL. */
  readonly url: string
  /** Messages held so far (released ones included), in order. */
  readonly held: readonly HeldMessage[]
  /** Hold every message later published on a subject `match` accepts (until release()). */
  hold(match: (subject: string) => boolean): void
  /**
   * Drop every message the server sends to a client whose subject and header block (`NATS/1.0 …`,
   * empty for a message without headers) `match` accepts; undefined stops dropping.
   */
  dropToClient(match: ((subject: string, headers: string) => boolean) | undefined): void
  /** Messages dropped on their way to a client so far. */
  readonly droppedToClient: number
  /** Send every message still held, in order, and stop holding. Returns how many were sent. */
  release(): number
  /** Reset every connection and stop listening. Idempotent. */
  close(): Promise<void>
}

interface Link {
  client: Socket
  upstream: Socket
  /** Client bytes not yet parsed into whole operations. */
  pending: Buffer
  /** Held operations (whole `PUB`/`HPUB` frames) waiting for release(). */
  queued: Buffer[]
  /** Server bytes not yet parsed into whole operations (only while dropping). */
  fromServer: Buffer
}

const CRLF = Buffer.from('\r\n')

/**
 * The length of the whole operation at the start of `buf` and its subject if it carries a message
 * (undefined: incomplete). `PUB`/`HPUB` go from a client, `MSG`/`HMSG` to one.
 */
type Frame =
  { length: number; subject?: undefined } | { length: number; subject: string; headersAt: number; payloadAt: number }

function frame(buf: Buffer): Frame | undefined {
  const eol = buf.indexOf(CRLF)
  if (eol < 0) return undefined
  const line = buf.subarray(0, eol).toString('latin1')
  const parts = line.trim().split(/\s+/)
  const op = parts[0]!.toUpperCase()
  if (op !== 'PUB' && op !== 'HPUB' && op !== 'MSG' && op !== 'HMSG') return { length: eol + 2 }
  // PUB <subject> [reply] <size>; HPUB <subject> [reply] <header size> <total size>;
  // MSG <subject> <sid> [reply] <size>; HMSG <subject> <sid> [reply] <header size> <total size>
  const total = Number(parts[parts.length - 1])
  const headers = op.startsWith('H') ? Number(parts[parts.length - 2]) : 0
  const length = eol + 2 + total + 2
  if (buf.length < length) return undefined
  return { length, subject: parts[1] ?? '', headersAt: eol + 2, payloadAt: eol + 2 + headers }
}

class HoldProxy implements NatsHoldProxy {
  readonly held: HeldMessage[] = []
  private match: ((subject: string) => boolean) | undefined
  private toClient: ((subject: string, headers: string) => boolean) | undefined
  droppedToClient = 0
  private readonly links = new Set<Link>()
  private closing: Promise<void> | undefined

  constructor(
    private readonly server: Server,
    private readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client))
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`
  }

  hold(match: (subject: string) => boolean): void {
    this.match = match
  }

  dropToClient(match: ((subject: string, headers: string) => boolean) | undefined): void {
    this.toClient = match
  }

  release(): number {
    this.match = undefined
    let sent = 0
    for (const link of this.links) {
      for (const op of link.queued.splice(0)) {
        link.upstream.write(op)
        sent++
      }
      this.pump(link)
    }
    return sent
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      for (const link of this.links) this.drop(link)
      this.server.close(() => resolve())
    })
    return this.closing
  }

  private accept(client: Socket): void {
    if (this.closing) return void client.destroy()
    client.setNoDelay(true)
    const upstream = connect(this.target)
    upstream.setNoDelay(true)
    const link: Link = { client, upstream, pending: Buffer.alloc(0), queued: [], fromServer: Buffer.alloc(0) }
    this.links.add(link)
    for (const s of [client, upstream]) {
      s.on('error', () => this.drop(link))
      s.on('close', () => this.drop(link))
    }
    upstream.on('data', (chunk: Buffer) => this.toClientData(link, chunk))
    client.on('data', (chunk: Buffer) => {
      link.pending = link.pending.length === 0 ? chunk : Buffer.concat([link.pending, chunk])
      this.pump(link)
    })
    client.resume()
  }

  /** Forward every whole operation, keeping back those to hold (and everything once something is queued
   * while holding is off again, order is restored by release()). */
  private pump(link: Link): void {
    for (;;) {
      const f = frame(link.pending)
      if (!f) return
      const op = link.pending.subarray(0, f.length)
      link.pending = link.pending.subarray(f.length)
      if (f.subject !== undefined && this.match?.(f.subject)) {
        link.queued.push(Buffer.from(op))
        const payload = Buffer.from(op.subarray(f.payloadAt, op.length - 2))
        this.held.push({ at: Date.now(), subject: f.subject, payload })
      } else {
        link.upstream.write(op)
      }
    }
  }

  /** Pass server bytes on, leaving out the messages `dropToClient` chose (whole operations only). */
  private toClientData(link: Link, chunk: Buffer): void {
    if (!this.toClient && link.fromServer.length === 0) return void link.client.write(chunk)
    let buf = link.fromServer.length === 0 ? chunk : Buffer.concat([link.fromServer, chunk])
    for (;;) {
      const f = frame(buf)
      if (!f) break
      const op = buf.subarray(0, f.length)
      buf = buf.subarray(f.length)
      const headers = f.subject === undefined ? '' : op.subarray(f.headersAt, f.payloadAt).toString('latin1')
      if (f.subject !== undefined && this.toClient?.(f.subject, headers)) this.droppedToClient++
      else link.client.write(op)
    }
    link.fromServer = Buffer.from(buf)
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return
    link.client.destroy()
    link.upstream.destroy()
  }
}

/** Start a holding proxy on a free 127.0.0.1 port in front of the NATS server at `target` (`nats://host:port`). */
export async function startNatsHoldProxy(target: string): Promise<NatsHoldProxy> {
  const first = target.replace(/^[a-z]+:\/\//, '').split(',')[0]!
  const i = first.lastIndexOf(':')
  const t = { host: first.slice(0, i), port: Number(first.slice(i + 1)) }
  const server = createServer({ pauseOnConnect: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('proxy has no port')
  return new HoldProxy(server, addr.port, t)
}
