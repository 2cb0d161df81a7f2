/**
 * The job store's writes for reopening a job (reopened.ts): read what DONE holds for a job, replace
 * its final record by a reopened record (compare-and-set: a record changed meanwhile is not
 * replaced), and submit the batch of the reopened runs (created once: a second submission of the
 * same batch — a new boss completing its predecessor's reopen — is refused by the store).
 */
import type { Logger } from '../../runner/logger.js'
import { isWrongLastSequence } from '../store-codec.js'
import type { StreamIO } from './io.js'
import type { StreamNames, Subjects } from './layout.js'
import { encode, type SubmitRecord } from './records.js'
import { DoneFinder, type FoundDone } from './final-groups.js'
import type { ReopenedRecord } from './reopened.js'

/**
 * DONE's record of a job: `seq` is where it is stored (its group's sequence for a grouped final),
 * `subjectSeq` the last sequence of the job's own subject (0: none), which a reopened record replaces.
 */
export type StoredDone = FoundDone

export class ReopenWrites {
  /** The reads begun in this turn of the event loop (with this signal) share their group reads. */
  private shared: { finder: DoneFinder; signal: AbortSignal | undefined } | undefined

  constructor(private readonly d: { io: StreamIO; streams: StreamNames; subjects: Subjects; log: Logger }) {}

  /**
   * What DONE holds for job `id` (its final or reopened record, its own or in a group); null: nothing.
   * Reads begun together (a bulk retry's thousand) read each group they need once.
   */
  readDone(id: string, signal?: AbortSignal): Promise<StoredDone | null> {
    if (!this.shared || this.shared.signal !== signal) {
      const { streams, log } = this.d
      const finder = new DoneFinder(
        this.d,
        (seq, problem) => log.warn({ stream: streams.done, seq, problem }, 'skipping garbage in the job store'),
        signal,
      )
      const shared = { finder, signal }
      this.shared = shared
      setImmediate(() => {
        if (this.shared === shared) this.shared = undefined
      })
    }
    return this.shared.finder.find(id)
  }

  /**
   * Write a reopened record on the job's own subject if its last sequence is still `expect` (0: none, as
   * for a grouped final); resolves with the new sequence, or null when it changed.
   */
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
