/**
 * A Server-Sent Events parser for the typed HTTP client's `events()` (client/http.ts). Hand-written:
 * Node 20 has no EventSource, and the part of the WHATWG event-stream format bosun needs — `data`
 * (several lines joined with "\n"), `id`, `event`, `retry`, comments (the API's `: keep-alive`),
 * any of CRLF / LF / CR as line ends, split anywhere across chunks — is this file, not a dependency.
 */

export interface SseMessage {
  /** `event:`; "message" when absent. */
  event: string
  data: string
  /** The last `id:` seen so far on the stream (what a reconnect sends as `Last-Event-ID`). */
  lastEventId: string | undefined
}

/** Feed text as it arrives; complete messages come out of `push`. */
export class SseParser {
  private buf = ''
  /** A chunk ended in CR: a LF starting the next one is the same line end. */
  private skipLf = false
  private data: string[] = []
  private event = ''
  private hasData = false
  /** `id:` of the message being read; it becomes `lastEventId` when the message ends. */
  private idBuffer: string | undefined
  /** The id as of the last complete message: what a reconnect sends as `Last-Event-ID`. */
  lastEventId: string | undefined
  /** The last `retry:` the server sent, in ms. */
  retryMs: number | undefined

  constructor(lastEventId?: string) {
    this.lastEventId = lastEventId
    this.idBuffer = lastEventId
  }

  /** A new connection: a message the old one left unfinished is dropped (the last event id stays). */
  reset(): void {
    this.buf = ''
    this.skipLf = false
    this.data = []
    this.event = ''
    this.hasData = false
    this.idBuffer = this.lastEventId
  }

  push(chunk: string): SseMessage[] {
    if (this.skipLf && chunk.startsWith('\n')) chunk = chunk.slice(1)
    this.skipLf = false
    this.buf += chunk
    const out: SseMessage[] = []
    let start = 0
    for (;;) {
      const cr = this.buf.indexOf('\r', start)
      const lf = this.buf.indexOf('\n', start)
      if (cr === -1 && lf === -1) break
      const end = cr === -1 ? lf : lf === -1 ? cr : Math.min(cr, lf)
      const line = this.buf.slice(start, end)
      if (this.buf[end] === '\r') {
        if (end + 1 === this.buf.length) this.skipLf = true
        start = this.buf[end + 1] === '\n' ? end + 2 : end + 1
      } else start = end + 1
      const msg = this.line(line)
      if (msg) out.push(msg)
    }
    this.buf = this.buf.slice(start)
    return out
  }

  private line(line: string): SseMessage | undefined {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return undefined // a comment: heartbeats
    const colon = line.indexOf(':')
    const field = colon === -1 ? line : line.slice(0, colon)
    let value = colon === -1 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    switch (field) {
      case 'data':
        this.data.push(value)
        this.hasData = true
        break
      case 'event':
        this.event = value
        break
      case 'id':
        if (!value.includes('\0')) this.idBuffer = value
        break
      case 'retry':
        if (/^\d+$/.test(value)) this.retryMs = Number(value)
        break
      default: // unknown fields are ignored
    }
    return undefined
  }

  private dispatch(): SseMessage | undefined {
    this.lastEventId = this.idBuffer
    const msg: SseMessage | undefined = this.hasData
      ? { event: this.event || 'message', data: this.data.join('\n'), lastEventId: this.lastEventId }
      : undefined
    this.data = []
    this.event = ''
    this.hasData = false
    return msg
  }
}

/** The messages of a response body, as they complete. */
export async function* readSse(body: AsyncIterable<Uint8Array>, parser: SseParser): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder()
  for await (const chunk of body) {
    yield* parser.push(decoder.decode(chunk, { stream: true }))
  }
  // An unterminated last message is dropped, as EventSource drops it.
}
