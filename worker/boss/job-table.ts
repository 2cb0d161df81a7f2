/**
 * The boss's in-memory table of unfinished jobs: the authoritative state of each during one term,
 * and its write-behind to the durable store. Records change here only through commit.ts; this file
 * keeps them, counts them by phase, and makes a change durable: an unfinished state through its
 * batch's state record (batch-book.ts, one write per batch for many changes), a final state as the
 * job's final record (written once; first runs in groups of their batch, final-groups.ts), then the
 * batch's done mask and the listing index (DONE's checkpoint stays below the final record until then:
 * done-watermark.ts; the write is acknowledged once the final record is durable, the rest follows in
 * the background). A job
 * leaves the table once it is final and durable — the boss's memory follows the unfinished work.
 */
import { errors, isBosunError, type Logger } from '../../runner/index.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import { withFields, type Job, type JobState } from '../../jobs/model.js'
import { assemble, liveOf, type LiveJob } from '../../jobs/streams/index.js'
import type { BatchBook } from './batch-book.js'
import type { DoneWatermark, Hold } from './done-watermark.js'
import type { FinalIndexer } from './final-indexer.js'
import { FinalGroups, groupable } from './final-groups.js'
import type { BossStore } from './store-port.js'
import { fitRecord } from './transitions.js'
import { mergeHistory } from '../../jobs/attempts.js'

export type Phase = 'queued' | 'running' | 'final'

export interface Tracked {
  job: Job
  /** Its batch and index (the job id is `<batch>-<index>`). */
  batch: string
  index: number
  /** The payload was too large to keep: `job.payload` is null here and read from the store when needed. */
  payloadRef: boolean
  phase: Phase
  /** Bumped on every enqueue (see ReadyQueue): older queue entries of the job are stale. */
  token: number
  /** ms timestamp of the last dispatch (or adoption). */
  dispatchedAt: number
  /** Times its worker vanished during this term. */
  losses: number
  localVersion: number
  storedVersion: number
  /** Final writes of this job, serialised. */
  chain: Promise<void>
  /** Its final state was announced (once per job). */
  announced: boolean
  /** Its finished event was published (once per job, as soon as its final record is durable). */
  published: boolean
  /**
   * Its final state came from a worker's result whose final record is not durable yet: the batch's
   * state record must not show that state meanwhile (it carries no result; see liveOf).
   */
  resultInFlight: boolean
  /** How many entries of `job.history` (this term's) are in the ATTEMPTS stream. */
  inStream: number
  /** Its submitter waits for it (`waited` in its submission): its finished notice carries its final record. */
  waited: boolean
  /** Read its DONE record before it is dispatched: its worker may have written a final (worker-finals.ts). */
  checkDone: boolean
  /**
   * Its final record is stored already (by the worker that ran it, at DONE sequence `seq`): the boss
   * does the bookkeeping without writing it; `index`: its listing entry is not written yet.
   */
  storedFinal: { seq: number; index: boolean } | undefined
}

export function phaseOf(state: JobState): Phase {
  return state === 'queued' ? 'queued' : state === 'running' ? 'running' : 'final'
}

export interface PersistOptions {
  /**
   * The change applies a result a worker still holds (it is acknowledged only after this write):
   * a takeover would receive it again, so the final record need not be announced in the batch's
   * state record first. Every other final (a cancel, a boss decision) is recorded there first.
   */
  fromResult?: boolean
  /**
   * Called once the job's final record is durable, before its batch's done mask is written or the
   * batch closed: the finished event can go out then (a reader finds the final record by id).
   */
  onFinalStored?: (t: Tracked) => void
}

export class JobTable {
  private readonly jobs = new Map<string, Tracked>()
  private readonly counts: Record<Phase, number> = { queued: 0, running: 0, final: 0 }
  /** Final records of first runs, written with the others of their batch (final-groups.ts). */
  private readonly groups: FinalGroups

  constructor(
    private readonly store: BossStore,
    private readonly book: BatchBook,
    private readonly indexer: FinalIndexer,
    /** Holds DONE's checkpoint below a final record until its done mask is durable. */
    private readonly watermark: DoneWatermark,
    private readonly epoch: number,
    private readonly logger: Logger,
    private readonly signal: AbortSignal,
    /** A final record's done mask (or its batch's close) is durable: DONE is settled past it. */
    private readonly onSettled: (t: Tracked) => void = () => undefined,
    /** Waited jobs' final records as their write is sent (TermDeps.announceFinal). */
    private readonly announceFinal?: (job: Job, ackSubject: string) => void,
  ) {
    this.groups = new FinalGroups(store, epoch, logger, signal)
  }

  get size(): number {
    return this.jobs.size
  }

  /** How many tracked jobs are in `phase` (e.g. the queue depth reported for backpressure). */
  count(phase: Phase): number {
    return this.counts[phase]
  }

  get(id: string): Tracked | undefined {
    return this.jobs.get(id)
  }

  values(): IterableIterator<Tracked> {
    return this.jobs.values()
  }

  /** Track a job read from the store. */
  load(job: Job, batch: string, index: number, payloadRef: boolean): Tracked {
    const t: Tracked = {
      job,
      batch,
      index,
      payloadRef,
      phase: phaseOf(job.state),
      token: 0,
      dispatchedAt: 0,
      losses: 0,
      localVersion: 0,
      storedVersion: 0,
      chain: Promise.resolve(),
      announced: false,
      published: false,
      resultInFlight: false,
      inStream: 0,
      waited: false,
      checkDone: false,
      storedFinal: undefined,
    }
    const old = this.jobs.get(job.id)
    if (old) this.counts[old.phase]--
    this.jobs.set(job.id, t)
    this.counts[t.phase]++
    return t
  }

  delete(id: string): void {
    const t = this.jobs.get(id)
    if (!t) return
    this.counts[t.phase]--
    this.jobs.delete(id)
  }

  /**
   * What the batch's state record says of job `index` (undefined: nothing beyond its submission). A
   * result is durable only in its final record: until that is stored, the job is recorded as the
   * attempt that produced it, running — a state record showing it final would let a reader, or a new
   * boss, take it as finished without its result.
   */
  liveOf(batch: string, index: number, id: string): LiveJob | undefined {
    const t = this.jobs.get(id)
    if (!t || t.batch !== batch || t.index !== index) return undefined
    if (t.resultInFlight) return liveOf({ ...t.job, state: 'running', error: undefined, finishedAt: undefined })
    return liveOf(t.job)
  }

  /**
   * Change a job in memory (only commit.ts calls this); `persist` makes it durable. `sameChange`: the
   * record is a cut-down form of the one being written (not a new change to write).
   */
  set(t: Tracked, job: Job, sameChange = false): void {
    const phase = phaseOf(job.state)
    if (this.jobs.get(job.id) === t) {
      this.counts[t.phase]--
      this.counts[phase]++
    }
    t.job = job
    t.phase = phase
    if (!sameChange) {
      t.localVersion++
      this.book.touch(t.batch)
    }
  }

  /** Make `t`'s newest state durable. Rejects when the term ended or a newer boss wrote its batch. */
  async persist(t: Tracked, opts: PersistOptions = {}): Promise<void> {
    const version = t.localVersion
    if (t.phase !== 'final') {
      await this.logAttempts(t)
      await this.book.persist(t.batch)
      t.storedVersion = Math.max(t.storedVersion, version)
      return
    }
    // Set now, before any write of the batch's state record can read the job (see liveOf).
    if (opts.fromResult) t.resultInFlight = true
    t.chain = t.chain.then(async () => {
      if (t.storedVersion >= version) {
        t.resultInFlight = false
        return
      }
      if (!opts.fromResult) await this.book.persist(t.batch) // the decision survives a crash before the final record
      const stored = t.storedFinal
      const hold = this.watermark.hold(stored?.seq)
      let created: boolean
      try {
        // A callback's task goes first: a crash between the two never loses the callback.
        if (stored) created = stored.index
        else {
          if (t.job.callbackUrl !== undefined) await this.enqueueCallback(t)
          created = await this.writeFinal(t, hold)
        }
      } finally {
        t.resultInFlight = false
      }
      opts.onFinalStored?.(t)
      this.book.markDone(t.batch, t.index)
      t.storedVersion = Math.max(t.storedVersion, version)
      // The final record is the job's durable truth from here: a takeover reads DONE after the
      // checkpoint, which `hold` keeps below it until the bookkeeping below is durable too.
      void this.settle(t, hold, created)
    })
    return t.chain
  }

  /**
   * After a final record: its done mask (shared with the batch's other finals of the next
   * `maskLingerMs`: batch-book.ts) or, for the batch's last job, the batch's close, and its listing
   * index entry. Then DONE's checkpoint may pass the record. When the term ends first the hold stays:
   * no checkpoint of this term passes the record, and the next boss reads it from DONE.
   */
  private async settle(t: Tracked, hold: Hold, created: boolean): Promise<void> {
    try {
      const durable = this.book.complete(t.batch)
        ? this.book.close(t.batch).then(() => this.groups.forget(t.batch))
        : this.book.persistSoon(t.batch)
      await Promise.all([durable, created ? this.indexer.add(t.job) : undefined])
    } catch (err) {
      if (!this.signal.aborted) this.logger.warn({ err, jobId: t.job.id }, 'done mask or index entry not written')
      return
    }
    this.watermark.release(hold)
    this.onSettled(t)
  }

  /** Queue the completion callback of the job's run (README "Completion callbacks"), retried until the term ends. */
  private async enqueueCallback(t: Tracked): Promise<void> {
    const task = { jobId: t.job.id, run: t.job.run ?? 0 }
    for (let failures = 0; ; failures++) {
      if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended before the callback was queued')
      try {
        return await this.store.enqueueCallback(task, this.signal)
      } catch (err) {
        if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended during the write', { cause: err })
        const delay = retryDelay(failures)
        this.logger.warn({ err, jobId: task.jobId, retryInMs: delay }, 'callback task not queued; retrying')
        await sleep(delay)
      }
    }
  }

  /** The final record, written once; a record already there (a predecessor's) stands and replaces ours. */
  private async writeFinal(t: Tracked, hold: Hold): Promise<boolean> {
    let record = await this.withPayload(t)
    for (let shrinks = 0, failures = 0; ; failures++) {
      if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended before the write')
      try {
        const stored = withFields(record, { epoch: this.epoch })
        // Its waiter hears the write's acknowledgement itself: the boss's notice is a leg later.
        const announce = this.announceFinal
        const heard =
          announce && t.waited && !t.payloadRef && failures === 0 && shrinks === 0
            ? (ack: string) => announce(stored, ack)
            : undefined
        const written =
          heard === undefined && groupable(stored, t.waited)
            ? await this.groups.write(t.batch, stored)
            : await this.store.writeFinal(stored, this.signal, heard)
        this.watermark.landed(hold, written.seq)
        // The table holds the record as stored (its finished notice may carry it), but for a payload
        // the boss does not keep.
        if (!written.created) this.set(t, written.job, true)
        else if (!t.payloadRef) this.set(t, stored, true)
        return written.created
      } catch (err) {
        if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended during the write', { cause: err })
        const max = isBosunError(err, errors.BODY_TOO_LARGE) ? err.details?.max : undefined
        if (typeof max === 'number' && shrinks++ < 2) {
          record = fitRecord(record, max, new Date())
          this.logger.warn({ jobId: t.job.id, max }, 'final record too large to store; cut to fit')
          const { payload: _p, ...rest } = record
          this.set(t, { ...rest, payload: t.payloadRef ? null : record.payload }, true)
          continue
        }
        const delay = retryDelay(failures)
        this.logger.warn({ err, jobId: t.job.id, retryInMs: delay }, 'final record write failed; retrying')
        await sleep(delay)
      }
    }
  }

  /**
   * Attempts that ended without ending the job go to the ATTEMPTS stream before the state record
   * that counts them: a new boss writes them into the final record (jobs/attempts.ts).
   */
  private async logAttempts(t: Tracked): Promise<void> {
    const history = t.job.history ?? []
    const fresh = history.length - t.inStream
    if (fresh <= 0) return
    await this.store.logAttempts(t.job.id, history.slice(-fresh), this.signal)
    t.inStream = history.length
    this.set(t, { ...t.job, logged: (t.job.logged ?? 0) + fresh }, true)
  }

  /**
   * The final record as stored: with its payload (read from its submission when the boss did not
   * keep it) and its whole history (entries a predecessor kept in the ATTEMPTS stream included).
   */
  private async withPayload(t: Tracked): Promise<Job> {
    let job = t.job
    if ('logged' in job) {
      const { logged, ...rest } = job
      job = rest
      if ((logged ?? 0) > t.inStream) {
        const stored = await this.store.loggedAttempts(job.id, this.signal)
        job = { ...job, history: mergeHistory(stored, job.history ?? []) }
      }
    }
    if (!t.payloadRef) return job
    const found = await this.store.readSubmitted(job.id)
    const payload = found ? assemble(found.submit, found.index, undefined, 0).payload : null
    return { ...job, payload }
  }
}
