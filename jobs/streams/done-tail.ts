/**
 * DONE after a checkpoint (boss-store.ts): the final and reopened records a new boss must know,
 * read once from a start sequence to the stream's end when the read began — the last moments of its
 * predecessor, never the history. No consumer at all when nothing was written since.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import type { Job } from '../model.js'
import { scanStream } from './follow.js'
import { parseJobId, type StreamNames, type Subjects } from './layout.js'
import { decodeDone, type ReopenedRecord } from './reopened.js'

/** DONE after a checkpoint: the final and reopened records there, and where the read ended. */
export interface DoneTail {
  /** `at`: when the store took the record (epoch ms, the server's clock). */
  finals: Array<{ job: Job; seq: number; at: number }>
  reopened: Array<{ job: ReopenedRecord; seq: number }>
  lastSeq: number
}

/**
 * The final and reopened records after DONE sequence `after`, up to the stream's end when the read
 * started (garbage skipped with a warning); `lastSeq`: that end. Rejects when `signal` aborts.
 */
export async function readDoneTail(
  d: { js: JetStreamClient; jsm: JetStreamManager; streams: StreamNames; subjects: Subjects; log: Logger },
  after: number,
  signal?: AbortSignal,
): Promise<DoneTail> {
  const finals: DoneTail['finals'] = []
  const reopened: Array<{ job: ReopenedRecord; seq: number }> = []
  // Nothing written since: no consumer needed (the common case after a quiet handover).
  const last = (await d.jsm.streams.info(d.streams.done)).state.last_seq
  if (last <= after) return { finals, reopened, lastSeq: after }
  const end = await scanStream(
    {
      js: d.js,
      jsm: d.jsm,
      stream: d.streams.done,
      filter: d.subjects.allDone,
      log: d.log,
      fromSeq: after + 1,
      onMessage: (m) => {
        const id = m.subject.slice(m.subject.lastIndexOf('.') + 1)
        const rec = parseJobId(id) ? decodeDone(m.data, id) : null
        if (rec?.kind === 'final') finals.push({ job: rec.job, seq: m.info.streamSequence, at: m.time.getTime() })
        else if (rec?.kind === 'reopened') reopened.push({ job: rec.job, seq: m.info.streamSequence })
        else
          d.log.warn(
            { stream: d.streams.done, seq: m.info.streamSequence, subject: m.subject, bytes: m.data.length },
            'skipping garbage in the job store',
          )
      },
    },
    signal,
    () => errors.NOT_LEADER('the boss term ended during the read'),
  )
  return { finals, reopened, lastSeq: Math.max(after, end) }
}
