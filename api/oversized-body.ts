/**
 * Answering a body over the limit without resetting the client. Fastify refuses such a body as soon
 * as it knows (a Content-Length over the limit, or a chunked body growing past it) and Node then
 * closes the connection after the 413 — while the client may still be writing. A client that writes
 * its whole body before reading the answer (fetch, curl, most clients) then gets EPIPE / ECONNRESET
 * instead of the 413 (CI's hostile fuzz test met it with a 2.4 MB body). Like nginx's lingering
 * close, the API reads and discards the rest of the body first, within a bound of bytes and time;
 * past the bound it answers at once and the connection closes (a reset is then the client's lot).
 */
import type { IncomingMessage } from 'node:http'

/** How much of an oversized body the API is willing to read and throw away before answering. */
export interface DrainBound {
  maxBytes: number
  maxMs: number
}

/** The bound for a body limit: four times the limit, at least 8 MiB, for at most 5 s. */
export function drainBoundFor(bodyLimitBytes: number): DrainBound {
  return { maxBytes: Math.max(4 * bodyLimitBytes, 8 * 1024 * 1024), maxMs: 5_000 }
}

/**
 * Read and discard the rest of `raw`'s body. Resolves `true` once the body ended, `false` when the
 * bound was reached first (declared length over it, too many bytes, too long) or the request broke.
 */
export function drainRequestBody(raw: IncomingMessage, bound: DrainBound): Promise<boolean> {
  if (raw.complete) return Promise.resolve(true)
  if (raw.destroyed) return Promise.resolve(false)
  const declared = Number(raw.headers['content-length'])
  if (Number.isFinite(declared) && declared > bound.maxBytes) return Promise.resolve(false)
  return new Promise((resolve) => {
    let seen = 0
    const finish = (ended: boolean): void => {
      clearTimeout(timer)
      raw.removeListener('data', onData)
      raw.removeListener('end', onEnd)
      raw.removeListener('close', onBroken)
      raw.removeListener('error', onBroken)
      if (!ended) raw.pause()
      resolve(ended)
    }
    const onData = (chunk: Buffer): void => {
      seen += chunk.length
      if (seen > bound.maxBytes) finish(false)
    }
    const onEnd = (): void => finish(true)
    const onBroken = (): void => finish(raw.complete)
    const timer = setTimeout(() => finish(false), bound.maxMs)
    raw.on('data', onData)
    raw.once('end', onEnd)
    raw.once('close', onBroken)
    raw.once('error', onBroken)
    raw.resume()
  })
}
