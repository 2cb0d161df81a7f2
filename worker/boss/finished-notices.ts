/**
 * The boss's finished notices: every job whose final record became durable during one turn of the
 * event loop goes out in one message on `bosun.<cluster>.events.finished` (`{ jobs: [{ id, state }] }`),
 * where a message per job cost the boss an encoded envelope and a publish each, nats-server a routed
 * message each, and every listener a decode each. Waiting API requests (`?wait`) hold one
 * subscription per API process. For a job whose submitter waits for it (`waited` in its submission)
 * the entry carries the final record as stored (`job`), so that request answers without reading the
 * store again: one round trip less on `?wait`'s path. Other jobs' entries stay ≈ 45 bytes: a record
 * in every entry would multiply the bytes every API decodes at full throughput.
 */
import type { Job } from '../../jobs/model.js'
import type { FinishedNotice } from '../../jobs/finished-notice.js'

/** Most notices in one message. */
export const MAX_NOTICES_PER_MESSAGE = 1000
/** Largest record carried in a notice (encoded bytes); a larger one is read from the store. */
export const MAX_RECORD_BYTES = 64 * 1024
/** A message is sent once its records reach this many bytes (far below NATS's max_payload of 1 MB). */
export const MAX_MESSAGE_RECORD_BYTES = 256 * 1024

/**
 * The announcement of a waited job's final record as its write is sent (`bosun.<cluster>.events.finishing`,
 * one message each, sent at once so it leaves before the write): `ack` is the subject on which
 * JetStream will acknowledge the write, which the APIs hear too (api/final-pairs.ts). A record too
 * large for a notice is not announced: its waiter answers from the finished notice as before.
 */
export function finalAnnouncer(send: (jobs: FinishedNotice[]) => void): (job: Job, ack: string) => void {
  return (job, ack) => {
    if (Buffer.byteLength(JSON.stringify(job)) > MAX_RECORD_BYTES) return
    send([{ id: job.id, state: job.state, job, ack }])
  }
}

export class FinishedNotices {
  private pending: FinishedNotice[] = []
  private scheduled = false

  /** `send` publishes one message (fire-and-forget: a lost notice only delays a waiter to its timeout). */
  constructor(private readonly send: (jobs: FinishedNotice[]) => void) {}

  /**
   * Announce a job whose final record is durable (`job` is that record); sent with the others of this
   * turn, with the record when `withRecord` and it is small enough.
   */
  add(job: Job, withRecord = false): void {
    const notice: FinishedNotice = { id: job.id, state: job.state }
    if (withRecord) notice.job = job
    this.pending.push(notice)
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => this.flush())
  }

  /** Send what is pending now (also at the end of each turn). */
  flush(): void {
    this.scheduled = false
    const all = this.pending
    this.pending = []
    let chunk: FinishedNotice[] = []
    let recordBytes = 0
    for (const notice of all) {
      if (notice.job) {
        const bytes = Buffer.byteLength(JSON.stringify(notice.job))
        if (bytes > MAX_RECORD_BYTES) delete notice.job
        else recordBytes += bytes
      }
      chunk.push(notice)
      if (chunk.length === MAX_NOTICES_PER_MESSAGE || recordBytes >= MAX_MESSAGE_RECORD_BYTES) {
        this.send(chunk)
        chunk = []
        recordBytes = 0
      }
    }
    if (chunk.length > 0) this.send(chunk)
  }
}
