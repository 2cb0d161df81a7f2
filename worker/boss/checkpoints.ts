/**
 * DONE checkpoints in one boss term (see done-watermark.ts). At the start the term reads the last
 * checkpoint and the final records written after it: a predecessor that died between a job's final
 * record and its batch's done mask left them there, and a job among them is final, not unfinished
 * (takeover.ts loads it so; it is never dispatched again). While the term acts, it writes how far
 * DONE is settled whenever that moved — fenced like a batch's state record.
 */
import { errors, type Logger } from '../../runner/index.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import type { Job } from '../../jobs/model.js'
import type { IndexedJob } from '../../jobs/streams/boss-store.js'
import type { DoneTail } from '../../jobs/streams/done-tail.js'
import type { ReopenedRecord } from '../../jobs/streams/reopened.js'
import { DoneWatermark, type Hold } from './done-watermark.js'
import { unlisted } from './final-indexer.js'
import type { BossStore } from './store-port.js'

interface TailEntry {
  job: Job
  /** Its DONE sequence. */
  seq: number
  hold: Hold
  /** Loaded into the table as final: released once this term made its done mask durable. */
  applied: boolean
}

export interface CheckpointDeps {
  store: BossStore
  epoch: number
  log: Logger
  signal: AbortSignal
  intervalMs: number
  acting(): boolean
  /**
   * The stored checkpoint carries a newer epoch: stop the term (a newer boss exists) — unless
   * ZooKeeper confirms this term still leads (resolves true), then the record is forged or corrupt.
   */
  suspectFence(reason: string): Promise<boolean>
}

export class Checkpoints {
  readonly watermark = new DoneWatermark(0)
  private readonly tail = new Map<string, TailEntry>()
  /** Reopened records after the checkpoint, each holding the watermark until its batch is known submitted. */
  private reopenedTail: Array<{ job: ReopenedRecord; release(): void }> = []
  private revision = 0
  private written = 0
  private writing = false
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly d: CheckpointDeps) {}

  /** Read the checkpoint and the final records after it (retried until it succeeds or the term ends). */
  async load(): Promise<{ after: number; finals: number; reopened: number }> {
    for (let failures = 0; ; failures++) {
      if (this.d.signal.aborted) throw errors.NOT_LEADER('the boss term ended')
      try {
        const cp = await this.d.store.readCheckpoint(this.d.signal)
        const after = cp.checkpoint?.doneSeq ?? 0
        const { finals, reopened, lastSeq } = await this.d.store.finalsAfter(after, this.d.signal)
        if (finals.length > 0) await this.indexMissing(finals)
        this.revision = cp.revision
        this.written = after
        this.watermark.advance(after)
        for (const f of finals)
          this.tail.set(f.job.id, { job: f.job, seq: f.seq, hold: this.watermark.hold(f.seq), applied: false })
        this.reopenedTail = reopened.map((r) => {
          const hold = this.watermark.hold(r.seq)
          return { job: r.job, release: () => this.watermark.release(hold) }
        })
        this.watermark.advance(lastSeq)
        return { after, finals: finals.length, reopened: reopened.length }
      } catch (err) {
        if (this.d.signal.aborted) throw errors.NOT_LEADER('the boss term ended', { cause: err })
        const delay = retryDelay(failures)
        this.d.log.warn({ err, retryInMs: delay }, 'reading the DONE checkpoint failed; retrying')
        await sleep(delay)
      }
    }
  }

  /**
   * A boss writes a job's listing index entry after its final record (final-indexer.ts): one that
   * died in between left records of the tail that no listing shows. Index those, once: the entries
   * stored since the tail's first record are read first (a little earlier, for clocks of different
   * servers), so a record its writer did index is not listed twice.
   */
  private async indexMissing(finals: DoneTail['finals']): Promise<void> {
    const missing: IndexedJob[] = (await unlisted(this.d.store, finals, this.d.signal)).map((job) => ({
      id: job.id,
      state: job.state,
      fn: job.function,
      ...(job.run ? { run: job.run } : {}),
    }))
    if (missing.length === 0) return
    await this.d.store.index(missing)
    this.d.log.info({ count: missing.length }, 'indexed final records whose writer had not listed them')
  }

  /** Write the checkpoint every `intervalMs` while it moves. */
  start(): void {
    this.timer = setInterval(() => void this.write(), this.d.intervalMs)
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  get tailSize(): number {
    return this.tail.size
  }

  /** The reopened records read after the checkpoint (once: the caller completes and releases them). */
  takeReopened(): Array<{ job: ReopenedRecord; release(): void }> {
    return this.reopenedTail.splice(0)
  }

  /**
   * The final record of run `run` standing for job `id` that its batch does not show yet, and its DONE
   * sequence (undefined: none). The caller loads the job as final; `settled(id)` once its done mask is durable.
   */
  standing(id: string, run: number): { job: Job; seq: number } | undefined {
    const e = this.tail.get(id)
    if (!e || (e.job.run ?? 0) !== run) return undefined
    e.applied = true
    return { job: e.job, seq: e.seq }
  }

  /** Job `id`'s final record of run `run` is settled (its batch shows it done, or this term made that durable). */
  settled(id: string, run: number): void {
    const e = this.tail.get(id)
    if (!e || (e.job.run ?? 0) !== run) return
    this.watermark.release(e.hold)
    this.tail.delete(id)
  }

  /** Every open batch was read: final records of batches not among them belong to closed batches. */
  loadDone(): void {
    for (const [id, e] of this.tail) if (!e.applied) this.settled(id, e.job.run ?? 0)
  }

  private async write(): Promise<void> {
    const doneSeq = this.watermark.value
    if (this.writing || !this.d.acting() || doneSeq <= this.written) return
    this.writing = true
    try {
      const { epoch, signal } = this.d
      const res = await this.d.store.writeCheckpoint({ v: 1, epoch, doneSeq }, this.revision, signal)
      if (res.ok) {
        this.revision = res.revision
        this.written = doneSeq
        return
      }
      const theirs = res.checkpoint?.epoch ?? 0
      // An older epoch's late write is overwritten at the next tick; a newer epoch's fences this term.
      if (theirs <= epoch || (await this.d.suspectFence(`the DONE checkpoint was written by epoch ${theirs}`)))
        this.revision = res.revision
    } catch (err) {
      if (!this.d.signal.aborted) this.d.log.warn({ err }, 'writing the DONE checkpoint failed; the next tick retries')
    } finally {
      this.writing = false
    }
  }
}
