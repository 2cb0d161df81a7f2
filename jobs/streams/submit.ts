/**
 * Submitting jobs: every job of a request goes into one batch message on the SUBMIT stream (more
 * than one only when they do not fit under the server's max_payload), acknowledged by JetStream
 * before the API answers 202. A job's id is `<batch>-<index>`; the batch id is the message id, so a
 * retried publish is stored once. Idempotency keys are claimed first (create-if-absent on the IDEM
 * stream): a job whose key another job holds leaves a hole in the batch and answers as that job.
 */
import { createHash } from 'node:crypto'
import { errors } from '../../runner/errors.js'
import { isValidJobId } from '../store-codec.js'
import { isObject } from '../parse.js'
import type { StreamIO } from './io.js'
import { jobIdOf, MAX_BATCH_JOBS, type Subjects } from './layout.js'
import { encode, type SubmittedJob, type SubmitRecord } from './records.js'
import { AbandonedClaims } from './claims.js'

/** Room left for headers and the record's own fields under max_payload. */
const HEADER_ROOM = 2048

export interface SubmitStreams {
  submit: string
  idem: string
}

/** Which batch each job goes into, and so its id. */
export interface SubmitPlan {
  chunks: Array<{ batch: string; start: number; end: number }>
  ids: string[]
}

/** An idempotency key's owner. */
export interface Claim {
  jobId: string
  claimedAt: string
  /** Sequence of the claim (for re-pointing an abandoned one). */
  seq: number
}

export class Submitter {
  constructor(
    private readonly io: StreamIO,
    private readonly subjects: Subjects,
    private readonly streams: SubmitStreams,
    /** The server's max_payload in bytes. */
    private readonly maxPayload: () => number,
  ) {}

  /**
   * Split `jobs` into batches that fit under max_payload (consecutive, at most MAX_BATCH_JOBS each)
   * and name them: each job's id is known before anything is written (idempotency keys are claimed
   * with it). Rejects with BODY_TOO_LARGE (details.index) when one job alone is over the limit.
   */
  plan(jobs: readonly SubmittedJob[], newBatchId: () => string): SubmitPlan {
    const max = this.maxPayload() - HEADER_ROOM
    const sizes = jobs.map((j, index) => {
      const bytes = encode(j).length + 1
      if (bytes > max)
        throw errors.BODY_TOO_LARGE(`job ${index} is ${bytes} bytes; the store takes at most ${max}`, {
          details: { index, bytes, max },
        })
      return bytes
    })
    const chunks: SubmitPlan['chunks'] = []
    const ids: string[] = []
    for (let start = 0; start < jobs.length;) {
      let end = start
      let bytes = 0
      while (end < jobs.length && end - start < MAX_BATCH_JOBS && bytes + sizes[end]! <= max) bytes += sizes[end++]!
      const batch = newBatchId()
      chunks.push({ batch, start, end })
      for (let i = start; i < end; i++) ids.push(jobIdOf(batch, i - start))
      start = end
    }
    return { chunks, ids }
  }

  /**
   * Store the planned batches (a null job is a hole: its id is never used) and resolve once every
   * one is durable. The batch id is the message id: a retry of the same plan is stored once.
   */
  async publish(plan: SubmitPlan, jobs: ReadonlyArray<SubmittedJob | null>, createdAt: string): Promise<void> {
    await Promise.all(
      plan.chunks.map(async ({ batch, start, end }) => {
        const slice = jobs.slice(start, end)
        if (slice.every((j) => j === null)) return
        const record: SubmitRecord = { v: 1, batch, createdAt, jobs: slice }
        await this.io.publish(this.streams.submit, this.subjects.submit(batch), encode(record), { msgId: batch })
      }),
    )
  }

  /** Ids this process claimed keys for but gave up on before sending (claims.ts). */
  readonly abandonedClaims = new AbandonedClaims()

  /** Claim `key` for `jobId` (create-if-absent); resolves with the claim that holds: ours or the first. */
  async claim(key: string, jobId: string): Promise<Claim> {
    const subject = this.idemSubject(key)
    const claimedAt = new Date().toISOString()
    try {
      const ack = await this.io.publish(this.streams.idem, subject, encode({ jobId, claimedAt }), {
        expectLastSubjectSequence: 0,
      })
      return { jobId, claimedAt, seq: ack.seq }
    } catch (err) {
      const existing = await this.io.last(this.streams.idem, subject)
      const claim = existing ? parseClaim(existing.data, existing.seq) : undefined
      if (claim !== undefined) return claim
      throw err
    }
  }

  /**
   * Move an abandoned claim (its job was never stored: its creator died between claim and publish)
   * to `jobId`, if nobody moved it first. Resolves with the claim that holds.
   */
  async repoint(key: string, abandoned: Claim, jobId: string): Promise<Claim> {
    const subject = this.idemSubject(key)
    const claimedAt = new Date().toISOString()
    try {
      const ack = await this.io.publish(this.streams.idem, subject, encode({ jobId, claimedAt }), {
        expectLastSubjectSequence: abandoned.seq,
      })
      return { jobId, claimedAt, seq: ack.seq }
    } catch (err) {
      const existing = await this.io.last(this.streams.idem, subject)
      const claim = existing ? parseClaim(existing.data, existing.seq) : undefined
      if (claim !== undefined) return claim
      throw err
    }
  }

  /** The stored answer of bulk retry request `requestId` (POST /jobs/retry), or undefined. */
  async retryAnswer(requestId: string): Promise<unknown> {
    const msg = await this.io.last(this.streams.idem, this.retrySubject(requestId))
    if (!msg) return undefined
    try {
      return JSON.parse(new TextDecoder().decode(msg.data)) as unknown
    } catch {
      return undefined
    }
  }

  /** Keep the answer of bulk retry request `requestId` unless one is kept; resolves with the one kept. */
  async keepRetryAnswer(requestId: string, answer: unknown): Promise<unknown> {
    try {
      await this.io.publish(this.streams.idem, this.retrySubject(requestId), encode(answer), {
        expectLastSubjectSequence: 0,
      })
      return answer
    } catch (err) {
      const kept = await this.retryAnswer(requestId)
      if (kept !== undefined) return kept
      throw err
    }
  }

  private retrySubject(requestId: string): string {
    return `${this.subjects.prefix}.idem.retry.${createHash('sha256').update(requestId, 'utf8').digest('hex')}`
  }

  private idemSubject(key: string): string {
    return `${this.subjects.prefix}.idem.${createHash('sha256').update(key, 'utf8').digest('hex')}`
  }
}

function parseClaim(data: Uint8Array, seq: number): Claim | undefined {
  try {
    const x: unknown = JSON.parse(new TextDecoder().decode(data))
    if (!isObject(x) || !isValidJobId(x.jobId)) return undefined
    return { jobId: x.jobId, claimedAt: typeof x.claimedAt === 'string' ? x.claimedAt : '', seq }
  } catch {
    return undefined
  }
}
