/**
 * Retrying jobs that ended — redrive (POST /jobs/:id/retry, POST /jobs/retry). Only the acting boss
 * reopens a job: it replaces the job's final record in DONE by a reopened record (compare-and-set on
 * that final record, so a job is reopened once per run however many requests ask), then submits the
 * reopened runs as a batch of their own, which the boss loads like any submitted batch. While it
 * writes, a watermark hold keeps DONE's checkpoint below the reopened records: a boss that dies in
 * between leaves them in DONE's tail, and its successor submits their batch (`complete`). The job
 * keeps its id and its history (jobs/attempts.ts); its attempts start again at 0.
 */
import { errors } from '../../runner/index.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import { newBatchId } from '../../jobs/job-ids.js'
import type { Job } from '../../jobs/model.js'
import type { RetryJobsBody, RetryOutcome } from '../../jobs/retry-protocol.js'
import { encode } from '../../jobs/streams/records.js'
import { reopenedBatch, reopenedRecordOf, type ReopenedRecord } from '../../jobs/streams/reopened.js'
import type { DoneWatermark } from './done-watermark.js'
import type { TermContext } from './term-context.js'

/** Bytes of reopened runs per batch (well under NATS's smallest usual max_payload of 1 MB). */
const BATCH_BYTES = 512 * 1024
const BATCH_JOBS = 1000
/** Rounds of 50 ms a retry waits for a job that just ended to leave the boss's table, and to be settled. */
const FINAL_WAIT_ROUNDS = 60

interface Candidate {
  final: Job
  /** Its DONE sequence (its group's, for a grouped final). */
  seq: number
  /** The last sequence of the job's own subject, which the reopened record replaces (0: none, a grouped final). */
  subjectSeq: number
}

export class Redrives {
  /** Jobs this term is reopening right now (a second request for one is a conflict until it is done). */
  private readonly busy = new Set<string>()

  constructor(
    private readonly ctx: TermContext,
    private readonly watermark: DoneWatermark,
    private readonly signal: AbortSignal,
  ) {}

  /** Reopen every job of `body` that ended failed or cancelled; an answer per id. */
  async retry(body: RetryJobsBody): Promise<RetryOutcome[]> {
    const answers = new Map<string, RetryOutcome>()
    const candidates: Candidate[] = []
    await Promise.all(
      body.ids.map(async (id) => {
        const answer = await this.classify(id, body.requestId)
        if ('final' in answer) candidates.push(answer)
        else answers.set(id, answer)
      }),
    )
    const mine = candidates.filter((c) => !this.busy.has(c.final.id))
    for (const c of candidates) if (!mine.includes(c)) answers.set(c.final.id, conflict(c.final.id, 'queued'))
    for (const c of mine) this.busy.add(c.final.id)
    try {
      for (const chunk of chunks(mine)) {
        const reopened = await this.reopen(chunk, body)
        for (const c of chunk) {
          const rec = reopened.get(c.final.id)
          answers.set(c.final.id, rec ? retried(rec) : conflict(c.final.id, 'queued'))
        }
      }
    } finally {
      for (const c of mine) this.busy.delete(c.final.id)
    }
    return body.ids.map((id) => answers.get(id)!)
  }

  /**
   * Reopened records a predecessor left above DONE's checkpoint (read at takeover, each holding
   * the watermark): submit each one's batch unless it exists, then let the checkpoint pass them.
   */
  async complete(tail: ReadonlyArray<{ job: ReopenedRecord; release(): void }>): Promise<void> {
    const byBatch = new Map<string, Array<{ job: ReopenedRecord; release(): void }>>()
    for (const r of tail) {
      const list = byBatch.get(r.job.reopened.batch) ?? []
      list.push(r)
      byBatch.set(r.job.reopened.batch, list)
    }
    const { store } = this.ctx.deps
    for (const [batch, records] of byBatch) {
      await this.untilWritten(`submit reopened batch ${batch}`, async () => {
        if (await store.readBatch(batch)) return
        const createdAt = new Date().toISOString()
        const created = await store.submitReopened(
          reopenedBatch(
            batch,
            records.map((r) => r.job),
            createdAt,
          ),
          this.signal,
        )
        if (created)
          this.ctx.log.warn({ batch, jobs: records.length }, 'submitted the reopened runs a predecessor left')
      })
      for (const r of records) r.release()
    }
  }

  private async classify(id: string, requestId: string): Promise<RetryOutcome | Candidate> {
    // A job that just ended is still in the table until its final record's bookkeeping is done.
    for (let i = 0; i < FINAL_WAIT_ROUNDS && this.ctx.table.get(id)?.phase === 'final'; i++) await sleep(50)
    const t = this.ctx.table.get(id)
    if (t) return t.job.reopenedBy === requestId ? { id, outcome: 'retried', job: t.job } : conflict(id, t.job.state)
    const cur = await this.ctx.deps.store.readDone(id, this.signal)
    if (!cur || cur.record.kind === 'garbage') return { id, outcome: 'not-found' }
    const job = cur.record.job
    if (cur.record.kind === 'reopened') {
      // This request reopened it before (an answer lost, a client retrying): the same answer again.
      if (cur.record.job.reopened.requestId === requestId) return retried(cur.record.job)
      return conflict(id, 'queued')
    }
    // A run this request started, finished since: answered as it stands, never a second run.
    if (job.reopenedBy === requestId) return { id, outcome: 'retried', job }
    if (job.state !== 'failed' && job.state !== 'cancelled') return conflict(id, job.state)
    // Its final record must be settled (its batch shows it done): reopened before, a boss dying
    // then would find the first run unfinished in its batch and run it again beside the new run.
    for (let i = 0; i < FINAL_WAIT_ROUNDS && this.watermark.value < cur.seq; i++) await sleep(50)
    if (this.watermark.value < cur.seq) return { id, outcome: 'busy' }
    return { final: job, seq: cur.seq, subjectSeq: cur.subjectSeq }
  }

  /** Write the reopened records of `chunk`, then their batch; the records that landed, by id. */
  private async reopen(chunk: Candidate[], body: RetryJobsBody): Promise<Map<string, ReopenedRecord>> {
    const { store } = this.ctx.deps
    const batch = newBatchId()
    const hold = this.watermark.hold()
    const landed = new Map<string, ReopenedRecord>()
    await Promise.all(
      chunk.map(async (c, index) => {
        const at = { batch, index, requestId: body.requestId }
        const rec = reopenedRecordOf(c.final, at, this.ctx.epoch, body.maxAttempts)
        // The final attempt of the ended run joins the logged history (mergeHistory drops repeats).
        const last = c.final.history?.at(-1)
        if (last) await this.untilWritten('log the last attempt', () => store.logAttempts(c.final.id, [last]))
        const seq = await this.untilWritten('write a reopened record', async () => {
          try {
            return await store.writeReopened(rec, c.subjectSeq, this.signal)
          } catch (err) {
            // Unknown whether it landed: DONE says.
            const now = await store.readDone(c.final.id, this.signal)
            const ours = now?.record.kind === 'reopened' && now.record.job.reopened.batch === batch
            if (ours) return now.seq
            if (now && now.seq !== c.seq) return null
            throw err
          }
        })
        if (seq !== null) landed.set(c.final.id, rec)
      }),
    )
    if (landed.size > 0) {
      const sub = reopenedBatch(batch, [...landed.values()], new Date().toISOString())
      await this.untilWritten('submit the reopened batch', () => store.submitReopened(sub, this.signal))
      this.ctx.log.info({ batch, jobs: landed.size, requestId: body.requestId }, 'reopened jobs for another run')
    }
    // Only now may the checkpoint pass the reopened records (their batch is durable).
    this.watermark.release(hold)
    return landed
  }

  /** Retry a store operation until it succeeds or the term ends (then NOT_LEADER: the hold stays). */
  private async untilWritten<T>(what: string, op: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      if (this.signal.aborted) throw errors.NOT_LEADER(`the boss term ended before: ${what}`)
      try {
        return await op()
      } catch (err) {
        if (this.signal.aborted) throw errors.NOT_LEADER(`the boss term ended during: ${what}`, { cause: err })
        const delay = retryDelay(failures)
        this.ctx.log.warn({ err, retryInMs: delay }, `${what} failed; retrying`)
        await sleep(delay)
      }
    }
  }
}

function conflict(id: string, state: Job['state']): RetryOutcome {
  return { id, outcome: 'conflict', state }
}

function retried(rec: ReopenedRecord): RetryOutcome {
  const { reopened: _at, ...job } = rec
  return { id: job.id, outcome: 'retried', job }
}

/** Candidates in batches of at most BATCH_JOBS jobs and about BATCH_BYTES. */
function chunks(list: Candidate[]): Candidate[][] {
  const out: Candidate[][] = []
  let cur: Candidate[] = []
  let bytes = 0
  for (const c of list) {
    const f = c.final
    const size =
      encode([f.function, f.payload ?? null, f.idempotencyKey, f.callbackUrl, f.concurrencyKey, f.id, f.createdAt])
        .length + 256
    if (cur.length > 0 && (cur.length === BATCH_JOBS || bytes + size > BATCH_BYTES)) {
      out.push(cur)
      cur = []
      bytes = 0
    }
    cur.push(c)
    bytes += size
  }
  if (cur.length > 0) out.push(cur)
  return out
}
