/**
 * The LIVE stream's reads and writes (layout.ts; the record is jobs/live.ts): one message per job,
 * read by subject from the stream leader (STREAM.MSG.GET) and written with a compare-and-set on the
 * subject's last sequence so that a stale attempt cannot overwrite a newer one unseen (both through
 * the process's reply inbox: js-inbox.ts). Live records are best effort — a write is tried once (the
 * caller retries on a conflict after re-reading), never with the long retries of the job records —
 * and garbage read back is dropped with a warning.
 */
import type { Logger } from '../../runner/logger.js'
import type { ReplyInbox } from '../../runner/transport/reply-inbox.js'
import { errors } from '../../runner/errors.js'
import { parseLiveRecord, type LiveRecord } from '../live.js'
import { isWrongLastSequence } from '../store-codec.js'
import { jsGetMessage, jsPublish } from './js-inbox.js'
import type { Subjects } from './layout.js'

/** A live record as stored, with its subject sequence (for the next compare-and-set). */
export interface StoredLive {
  seq: number
  /** Undefined when the stored message is garbage (the caller overwrites it). */
  record: LiveRecord | undefined
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

export class LiveStore {
  constructor(
    private readonly inbox: ReplyInbox,
    private readonly subjects: Subjects,
    private readonly stream: string,
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  /** The job's stored live message, or null when it has none. Rejects with BOSUN_ERR_STORE. */
  async read(jobId: string): Promise<StoredLive | null> {
    let m
    try {
      m = await jsGetMessage(this.inbox, this.stream, { last_by_subj: this.subjects.live(jobId) }, this.timeoutMs)
    } catch (err) {
      throw errors.STORE(`read of job ${jobId}'s live record failed: ${(err as Error).message}`, { cause: err })
    }
    if (m === null) return null
    let record: LiveRecord | undefined
    try {
      record = parseLiveRecord(JSON.parse(decoder.decode(m.data)), jobId)
    } catch {
      record = undefined
    }
    if (record === undefined)
      this.log.warn({ jobId, seq: m.seq, bytes: m.data.length }, 'a live record that is not one: ignored')
    return { seq: m.seq, record }
  }

  /**
   * Store `record` if the subject's last sequence is still `expectSeq` (0: no message yet).
   * Resolves with the new sequence, or 'conflict' when another write came first.
   */
  async write(record: LiveRecord, expectSeq: number): Promise<number | 'conflict'> {
    try {
      const ack = await jsPublish(
        this.inbox,
        this.subjects.live(record.jobId),
        encoder.encode(JSON.stringify(record)),
        {
          timeoutMs: this.timeoutMs,
          expectLastSubjectSequence: expectSeq,
        },
      )
      return ack.seq
    } catch (err) {
      if (isWrongLastSequence(err)) return 'conflict'
      throw errors.STORE(`write of job ${record.jobId}'s live record failed: ${(err as Error).message}`, {
        cause: err,
      })
    }
  }
}
