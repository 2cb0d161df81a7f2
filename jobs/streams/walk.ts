/**
 * Reading a stream backwards (newest first) through a subject filter, though JetStream only reads
 * forwards: windows below the current position are scanned forwards with "next message matching
 * the filter from sequence s" and yielded in reverse; a window with no match doubles the next one,
 * so a sparse filter or a long run of deleted messages costs O(log n) requests, and a page of k
 * matches costs about k requests — never a read of the whole stream.
 */
import type { StoredMessage, StreamIO } from './io.js'

/** First window, in sequences. */
const FIRST_WINDOW = 64
/** Largest window (a dense filter never scans more than this past what it needs). */
const MAX_WINDOW = 1 << 20

/**
 * Messages of `stream` matching `filter` with a sequence below `before`, newest first. Stops at
 * the stream's first sequence (or when the consumer stops iterating).
 */
export async function* walkBackwards(
  io: StreamIO,
  stream: string,
  filter: string,
  before: number,
  signal?: AbortSignal,
): AsyncGenerator<StoredMessage> {
  const { first } = await io.bounds(stream)
  let hi = before
  let window = FIRST_WINDOW
  while (hi > first && hi > 1) {
    const lo = Math.max(first, hi - window, 1)
    const found: StoredMessage[] = []
    for (let s = lo; s < hi;) {
      const m = await io.next(stream, filter, s, signal)
      if (m === null || m.seq >= hi) break
      found.push(m)
      s = m.seq + 1
    }
    for (let i = found.length - 1; i >= 0; i--) yield found[i]!
    hi = lo
    window = found.length === 0 ? Math.min(MAX_WINDOW, window * 2) : FIRST_WINDOW
  }
}
