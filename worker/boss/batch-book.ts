/**
 * The boss's book of open batches: for each batch with unfinished jobs, which of its jobs are done
 * and the revision of its state record, and the write-behind of that record — one fenced
 * compare-and-set per batch covering every change made to its jobs since the last write (a burst
 * of dispatches or results costs one write per batch, not one per job). A lost race with an older
 * epoch's write merges what it recorded (jobs it finished stay finished); a newer epoch's record
 * fences this term. A batch whose jobs are all done and durable is closed.
 */
import { errors, isBosunError, type Logger } from '../../runner/index.js'
import { retryDelay, sleep } from '../../runner/retry.js'
import { doneMask, doneSet, jobIdOf, type BatchState, type LiveJob, type OpenBatch } from '../../jobs/streams/index.js'
import type { BossSettings } from './settings.js'
import type { BossStore, ClosedBatchState } from './store-port.js'
import { Tombstones } from './tombstones.js'

/** One open batch as the boss keeps it. */
export interface BookEntry {
  readonly batch: string
  readonly submitSeq: number
  readonly size: number
  /** Indexes of jobs that exist (holes excluded). */
  readonly jobs: ReadonlySet<number>
  /** Indexes whose final record is durable (the mask to write). */
  readonly done: Set<number>
  /** Revision of the state record (0: none yet). */
  revision: number
  /** Changes since the last durable write; bumped by `touch`. */
  version: number
  storedVersion: number
  chain: Promise<void>
  /** Set once the batch is being closed: resolves when its submit message is gone. */
  closed: Promise<void> | undefined
  /** A done-mask write waiting out the mask linger (see persistSoon). */
  soon: Promise<void> | undefined
  /** Ids of its jobs that keep their own (a batch of reopened runs); absent: `<batch>-<index>` for all. */
  readonly ids?: ReadonlyMap<number, string>
  /** Open when this term began (OpenBatch.adopted): its close leaves a tombstone (tombstones.ts). */
  readonly adopted: boolean
}

export interface BookHooks {
  /** The current record of job `index` of `batch`, as this term sees it (undefined: not tracked). */
  liveOf(batch: string, index: number): LiveJob | undefined
  /** A newer boss wrote this batch's record. */
  onFenced(err: unknown, batch: string): void
  /** A predecessor's late write recorded these jobs as done (or decided): take them. */
  onMerged(batch: string, doneIndexes: number[], decided: Array<[number, LiveJob]>): void
}

export class BatchBook {
  private readonly entries = new Map<string, BookEntry>()
  /** The tombstones this term's closes (and its takeover) left, until they are removed. */
  readonly tombstones: Tombstones

  constructor(
    private readonly store: BossStore,
    private readonly epoch: number,
    private readonly log: Logger,
    private readonly hooks: BookHooks,
    private readonly signal: AbortSignal,
    private readonly settings: Pick<BossSettings, 'maskLingerMs' | 'tombstoneTtlMs'>,
  ) {
    this.tombstones = new Tombstones((seq, s) => store.removeTombstone(seq, s), settings.tombstoneTtlMs, log, signal)
  }

  get size(): number {
    return this.entries.size
  }

  get(batch: string): BookEntry | undefined {
    return this.entries.get(batch)
  }

  /** Register an open batch read from the store (idempotent: a batch read twice keeps its first entry). */
  open(b: OpenBatch): BookEntry {
    const existing = this.entries.get(b.batch)
    if (existing) return existing
    const jobs = new Set<number>()
    let ids: Map<number, string> | undefined
    b.submit.jobs.forEach((j, i) => {
      if (j !== null) jobs.add(i)
      if (j?.id !== undefined) (ids ??= new Map()).set(i, j.id)
    })
    const entry: BookEntry = {
      batch: b.batch,
      submitSeq: b.submitSeq,
      size: b.submit.jobs.length,
      jobs,
      done: b.state ? doneSet(b.state) : new Set(),
      revision: b.stateRevision,
      version: 0,
      storedVersion: 0,
      chain: Promise.resolve(),
      closed: undefined,
      soon: undefined,
      ...(ids ? { ids } : {}),
      adopted: b.adopted,
    }
    this.entries.set(b.batch, entry)
    return entry
  }

  /** The id of job `index` of an open batch. */
  idOf(batch: string, index: number): string {
    return this.entries.get(batch)?.ids?.get(index) ?? jobIdOf(batch, index)
  }

  /** Something about the batch changed: the next write must carry it. */
  touch(batch: string): void {
    const e = this.entries.get(batch)
    if (e) e.version++
  }

  /** Job `index` is final and its final record durable: it goes into the mask. */
  markDone(batch: string, index: number): void {
    const e = this.entries.get(batch)
    if (!e || e.done.has(index)) return
    e.done.add(index)
    e.version++
  }

  /** True when every job of the batch is in the mask. */
  complete(batch: string): boolean {
    const e = this.entries.get(batch)
    return e !== undefined && e.done.size >= e.jobs.size
  }

  /** Make every change made so far durable (coalesced with others; serialised per batch). */
  persist(batch: string): Promise<void> {
    const e = this.entries.get(batch)
    if (!e) return Promise.reject(errors.NOT_LEADER(`batch ${batch} is not open in this term`))
    const target = e.version
    e.chain = e.chain.then(async () => {
      if (e.storedVersion >= target && e.revision > 0) return
      const version = e.version
      await this.write(e)
      e.storedVersion = Math.max(e.storedVersion, version)
    })
    return e.chain
  }

  /**
   * Make the done marks durable within `maskLingerMs` (BossSettings), with every other mark of the
   * batch made meanwhile in the same write: the finals of a batch arrive in waves, and one write per
   * wave re-encoded the batch's whole record each time (≈ 10 % of the boss's CPU in a profile of
   * batches of 500). Nothing waits on it but DONE's checkpoint. A batch closed meanwhile needs no
   * mask: its close answers.
   */
  persistSoon(batch: string): Promise<void> {
    const e = this.entries.get(batch)
    if (!e) return Promise.reject(errors.NOT_LEADER(`batch ${batch} is not open in this term`))
    e.soon ??= new Promise<void>((resolve) => setTimeout(resolve, this.settings.maskLingerMs)).then(() => {
      e.soon = undefined
      if (e.closed) return e.closed
      if (this.entries.get(batch) !== e) return // closed and gone
      return this.persist(batch)
    })
    return e.soon
  }

  /**
   * Remove a complete batch's records from the store and the book. Resolves once its submit message
   * is deleted (then no takeover reads it again: it replaces the last done-mask write) and, for a
   * batch adopted at takeover, its state record replaced by a tombstone (tombstones.ts); idempotent.
   */
  close(batch: string): Promise<void> {
    const e = this.entries.get(batch)
    if (!e) return Promise.resolve()
    if (e.closed) return e.closed
    if (!this.complete(batch)) return Promise.reject(errors.STORE(`batch ${batch} is not complete`))
    const closed = e.chain.then(async () => {
      const tombstone = e.adopted ? { epoch: this.epoch, size: e.size } : undefined
      const seq = await this.store.closeBatch(batch, e.submitSeq, e.revision, this.signal, tombstone)
      this.tombstones.add(seq, Date.now())
      this.entries.delete(batch)
    })
    e.closed = closed
    e.chain = closed.catch(() => undefined)
    closed.catch((err: unknown) => {
      e.closed = undefined
      if (!this.signal.aborted)
        this.log.warn({ err, batch }, 'closing a finished batch failed; the next term closes it')
    })
    return closed
  }

  /**
   * A state record the takeover found without an open batch: a tombstone waits for its removal; the
   * leftover of a close that stopped half-way is replaced by this term's tombstone.
   */
  closedFound(c: ClosedBatchState): void {
    if (c.tombstone) return this.tombstones.add(c.seq, c.storedAtMs)
    this.log.warn({ batch: c.batch }, 'closing the state record a half-finished close left')
    this.store
      .closeBatch(c.batch, 0, c.seq, this.signal, { epoch: this.epoch, size: c.size })
      .then((seq) => this.tombstones.add(seq, Date.now()))
      .catch((err: unknown) => {
        if (!this.signal.aborted) this.log.warn({ err, batch: c.batch }, 'closing it failed; the next term closes it')
      })
  }

  /** The state record as this term would write it now. */
  private record(e: BookEntry): BatchState {
    const jobs: Record<string, LiveJob> = {}
    for (const i of e.jobs) {
      if (e.done.has(i)) continue
      const live = this.hooks.liveOf(e.batch, i)
      if (live) jobs[String(i)] = live
    }
    return { v: 1, epoch: this.epoch, batch: e.batch, size: e.size, done: doneMask(e.done, e.size), jobs }
  }

  private async write(e: BookEntry): Promise<void> {
    for (let failures = 0; ; failures++) {
      if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended before the write')
      try {
        const res = await this.store.writeState(this.record(e), e.revision, this.signal)
        if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended during the write')
        if (res.ok) {
          e.revision = res.revision
          return
        }
        // A lost race with an older epoch (the previous boss, still writing): keep what it recorded.
        e.revision = res.revision
        if (res.current) this.merge(e, res.current)
      } catch (err) {
        if (isBosunError(err, errors.STALE_EPOCH)) {
          this.hooks.onFenced(err, e.batch)
          throw err
        }
        if (this.signal.aborted) throw errors.NOT_LEADER('the boss term ended during the write', { cause: err })
        const delay = retryDelay(failures)
        this.log.warn({ err, batch: e.batch, retryInMs: delay }, 'batch state write failed; retrying')
        await sleep(delay)
      }
    }
  }

  private merge(e: BookEntry, theirs: BatchState): void {
    const newlyDone: number[] = []
    for (const i of doneSet(theirs)) {
      if (!e.done.has(i) && e.jobs.has(i)) {
        e.done.add(i)
        newlyDone.push(i)
      }
    }
    const decided: Array<[number, LiveJob]> = []
    for (const [k, live] of Object.entries(theirs.jobs)) {
      const i = Number(k)
      if (e.done.has(i) || !['succeeded', 'failed', 'cancelled'].includes(live.state)) continue
      const ours = this.hooks.liveOf(e.batch, i)
      if (!ours || !['succeeded', 'failed', 'cancelled'].includes(ours.state)) decided.push([i, live])
    }
    if (newlyDone.length > 0 || decided.length > 0) {
      this.log.warn(
        { batch: e.batch, done: newlyDone.length, decided: decided.length },
        'a previous boss recorded jobs after this term read the batch: kept',
      )
      this.hooks.onMerged(e.batch, newlyDone, decided)
    }
  }

  /** Ids of a batch's jobs (for logs and tests). */
  ids(batch: string): string[] {
    const e = this.entries.get(batch)
    return e ? [...e.jobs].map((i) => this.idOf(batch, i)) : []
  }
}
