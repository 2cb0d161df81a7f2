/**
 * DONE after a checkpoint (boss-store.ts): the final and reopened records a new boss must know (a
 * group of finals counts as each of its finals, at the group's sequence),
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
import type { StreamIO } from './io.js'
import { decodeGroup, groupSubjectOf } from './final-groups.js'

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
  d: {
    js: JetStreamClient
    jsm: JetStreamManager
    io: StreamIO
    streams: StreamNames
    subjects: Subjects
    log: Logger
  },
  after: number,
  signal?: AbortSignal,
): Promise<DoneTail> {
  const finals: DoneTail['finals'] = []
  const reopened: Array<{ job: ReopenedRecord; seq: number }> = []
  // Nothing written since: no consumer needed (the common case after a quiet handover).
  const last = (await d.jsm.streams.info(d.streams.done)).state.last_seq
  if (last <= after) return { finals, reopened, lastSeq: after }
  let read = after
  const take = (subject: string, seq: number, data: Uint8Array, at: number) => {
    read = Math.max(read, seq)
    const where = groupSubjectOf(d.subjects, subject)
    const group = where ? decodeGroup(data, where.batch, where.part) : null
    if (group) {
      for (const job of group.finals) finals.push({ job, seq, at })
      return
    }
    const id = where ? '' : subject.slice(subject.lastIndexOf('.') + 1)
    const rec = parseJobId(id) ? decodeDone(data, id) : null
    if (rec?.kind === 'final') finals.push({ job: rec.job, seq, at })
    else if (rec?.kind === 'reopened') reopened.push({ job: rec.job, seq })
    else d.log.warn({ stream: d.streams.done, seq, subject, bytes: data.length }, 'skipping garbage in the job store')
  }
  const end = await scanStream(
    {
      js: d.js,
      jsm: d.jsm,
      stream: d.streams.done,
      filter: d.subjects.allDone,
      log: d.log,
      fromSeq: after + 1,
      onMessage: (m) => take(m.subject, m.seq, m.data, m.storedAtMs),
    },
    signal,
    () => errors.NOT_LEADER('the boss term ended during the read'),
  )
  // nats-server 2.9 can count a consumer's pending messages short when a subject holds several (a
  // batch part's groups; seen in test/faults/zk-quorum.test.ts after DONE sat idle a few seconds),
  // and the consumer's read then ends before the stream's end: the rest is read message by message.
  if (read < end) {
    const from = read
    for (let m = await d.io.next(d.streams.done, d.subjects.allDone, read + 1, signal); m && m.seq <= end;) {
      // No store time in the answer: 0 makes the index lookback (checkpoints.ts) reach back furthest.
      take(m.subject, m.seq, m.data, m.time ?? 0)
      m = m.seq < end ? await d.io.next(d.streams.done, d.subjects.allDone, m.seq + 1, signal) : null
    }
    d.log.warn(
      { stream: d.streams.done, from, to: end },
      "DONE's consumer stopped short of the stream's end; read the rest directly",
    )
  }
  return { ...newestPerJob(finals, reopened), lastSeq: Math.max(after, end) }
}

/**
 * A job's newest record only (its final replaced by a reopened record, that by the next run's final):
 * a job's records share its subject but for a first run's final in a group, and DONE keeps every
 * message of a subject since groups share theirs.
 */
function newestPerJob(
  finals: DoneTail['finals'],
  reopened: DoneTail['reopened'],
): Pick<DoneTail, 'finals' | 'reopened'> {
  const newest = new Map<string, number>()
  for (const r of [...finals, ...reopened]) newest.set(r.job.id, Math.max(r.seq, newest.get(r.job.id) ?? 0))
  return {
    finals: finals.filter((f) => newest.get(f.job.id) === f.seq),
    reopened: reopened.filter((r) => newest.get(r.job.id) === r.seq),
  }
}
