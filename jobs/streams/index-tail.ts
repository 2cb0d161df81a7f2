/**
 * The listing index's recent entries: which finished runs the INDEX stream names since a moment.
 * A boss writes a job's index entry after its final record, so one that dies in between leaves a
 * final record nobody lists; its successor reads the entries written since DONE's unsettled tail
 * began and indexes what is missing — only the last moments, never the whole index.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { scanStream } from './follow.js'
import type { StreamNames, Subjects } from './layout.js'
import { decodeIndex } from './records.js'

/**
 * The index entries (`<id>` or `<id>@<run>`, reopened.ts's indexEntry) stored at or after `sinceMs`
 * (epoch ms, the server's clock) up to the stream's end when the read began; garbage skipped with
 * a warning. Rejects when `signal` aborts.
 */
export async function readIndexedSince(
  d: { js: JetStreamClient; jsm: JetStreamManager; streams: StreamNames; subjects: Subjects; log: Logger },
  sinceMs: number,
  signal?: AbortSignal,
): Promise<Set<string>> {
  const entries = new Set<string>()
  const stream = d.streams.index
  await scanStream(
    {
      js: d.js,
      jsm: d.jsm,
      stream,
      filter: d.subjects.index('*', '*'),
      log: d.log,
      fromTime: sinceMs,
      onMessage: (m) => {
        const rec = decodeIndex(m.data)
        if (rec) for (const e of rec.ids) entries.add(e)
        else d.log.warn({ stream, seq: m.seq }, 'skipping garbage in the job store')
      },
    },
    signal,
    () => errors.NOT_LEADER('the boss term ended during the read'),
  )
  return entries
}
