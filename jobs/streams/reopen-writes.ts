/**
 * The job store's writes for reopening a job (reopened.ts): read what DONE holds for a job, replace
 * its final record by a reopened record (compare-and-set: a record changed meanwhile is not
 * replaced), and submit the batch of the reopened runs (created once: a second submission of the
 * same batch — a new boss completing its predecessor's reopen — is refused by the store).
 */
import { isWrongLastSequence } from '../store-codec.js'
import type { StreamIO } from './io.js'
import type { StreamNames, Subjects } from './layout.js'
import { encode, type SubmitRecord } from './records.js'
import { decodeDone, type DoneRecord, type ReopenedRecord } from './reopened.js'

/** DONE's record of a job and its sequence. */
export interface StoredDone {
  record: DoneRecord
  seq: number
}

export class ReopenWrites {
  constructor(private readonly d: { io: StreamIO; streams: StreamNames; subjects: Subjects }) {}

  /** What DONE holds for job `id` (its final or reopened record); null: nothing. */
  async readDone(id: string, signal?: AbortSignal): Promise<StoredDone | null> {
    const msg = await this.d.io.last(this.d.streams.done, this.d.subjects.done(id), signal)
    return msg ? { record: decodeDone(msg.data, id), seq: msg.seq } : null
  }

  /** Replace the record at DONE sequence `expect`; resolves with the new sequence, or null when it changed. */
  async writeReopened(rec: ReopenedRecord, expect: number, signal?: AbortSignal): Promise<number | null> {
    const { io, streams, subjects } = this.d
    try {
      const ack = await io.publish(streams.done, subjects.done(rec.id), encode(rec), {
        expectLastSubjectSequence: expect,
        ...(signal ? { signal } : {}),
      })
      return ack.seq
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err
      if (isWrongLastSequence(cause)) return null
      throw err
    }
  }

  /** Submit a batch of reopened runs; false when the batch exists (or existed) already. */
  async submit(sub: SubmitRecord, signal?: AbortSignal): Promise<boolean> {
    const { io, streams, subjects } = this.d
    try {
      await io.publish(streams.submit, subjects.submit(sub.batch), encode(sub), {
        expectLastSubjectSequence: 0,
        msgId: `reopen.${sub.batch}`,
        ...(signal ? { signal } : {}),
      })
      return true
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err
      if (isWrongLastSequence(cause)) return false
      throw err
    }
  }
}
