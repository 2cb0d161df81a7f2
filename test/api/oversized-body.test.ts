/**
 * A body over the limit is answered 413 *after* the API has read (and thrown away) what the client
 * sends, up to a bound: a client that writes its whole body before reading the answer — fetch, curl,
 * most HTTP clients — then reads the 413 instead of a connection reset (EPIPE / ECONNRESET) from a
 * server that answered and closed mid-upload. CI's hostile fuzz test met that reset with a 2.4 MB
 * body. Over a real TCP socket, because inject() has no socket to close.
 */
import net from 'node:net'
import t from 'tap'
import { buildApp } from '../../api/app.js'
import { silentLogger } from '../../runner/logger.js'
import { FakeJobService } from './fake-service.js'
import { FakeClusterEvents } from './fake-events.js'

const LIMIT = 64 * 1024

async function listen(t: { teardown(fn: () => unknown): void }): Promise<number> {
  const app = buildApp({
    service: new FakeJobService(),
    events: new FakeClusterEvents(),
    logger: silentLogger(),
    bodyLimitBytes: LIMIT,
  })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as net.AddressInfo).port
}

interface Exchange {
  /** Bytes of the answer that arrived before the client had written its last body byte. */
  earlyBytes: number
  answer: string
  writeError: string | undefined
}

/** Send headers and the first part, pause, then the rest; collect the answer. */
function exchange(port: number, headers: string, parts: Buffer[], pauseMs: number): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let answer = ''
    let earlyBytes = 0
    let bodySent = false
    let writeError: string | undefined
    socket.on('data', (d) => {
      if (!bodySent) earlyBytes += d.length
      answer += d.toString('latin1')
    })
    socket.on('error', (err: NodeJS.ErrnoException) => {
      writeError ??= err.code ?? err.message
    })
    socket.on('close', () => resolve({ earlyBytes, answer, writeError }))
    socket.write(headers)
    const writeNext = (i: number): void => {
      if (i === parts.length - 1) {
        bodySent = true // the server cannot have the last byte before this write
        socket.write(parts[i]!)
        return
      }
      socket.write(parts[i]!, () => setTimeout(() => writeNext(i + 1), pauseMs))
    }
    writeNext(0)
    setTimeout(() => socket.end(), 5_000).unref()
  })
}

t.test('a declared Content-Length over the limit: the 413 comes after the body, on an open connection', async (t) => {
  const port = await listen(t)
  const total = 8 * LIMIT
  const parts = Array.from({ length: 8 }, () => Buffer.alloc(total / 8, 0x20))
  const headers = `POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${total}\r\n\r\n`
  const ex = await exchange(port, headers, parts, 50)
  t.equal(ex.writeError, undefined, 'every body byte was written without a reset')
  t.equal(ex.earlyBytes, 0, 'nothing was answered before the body was sent')
  t.match(ex.answer, /^HTTP\/1\.1 413 /)
  t.match(ex.answer, /BOSUN_ERR_BODY_TOO_LARGE/)
})

t.test('a chunked body that grows over the limit: the 413 comes after the body', async (t) => {
  const port = await listen(t)
  const chunk = Buffer.alloc(LIMIT / 2, 0x20)
  const frame = Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')])
  const parts = [...Array.from({ length: 6 }, () => frame), Buffer.from('0\r\n\r\n')]
  const headers =
    'POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n' + 'transfer-encoding: chunked\r\n\r\n'
  const ex = await exchange(port, headers, parts, 50)
  t.equal(ex.writeError, undefined)
  t.equal(ex.earlyBytes, 0)
  t.match(ex.answer, /^HTTP\/1\.1 413 /)
})

t.test('a body far over the drain bound: answered 413 at once and closed', async (t) => {
  const port = await listen(t)
  const total = 1024 * 1024 * 1024
  const headers = `POST /jobs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: ${total}\r\n\r\n`
  // 1 GiB declared, a few MiB sent: the API does not wait for the rest.
  const ex = await exchange(port, headers, [Buffer.alloc(LIMIT, 0x20)], 10)
  t.match(ex.answer, /^HTTP\/1\.1 413 /)
})
