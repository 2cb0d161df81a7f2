/**
 * The bench's job store in memory (test/helpers/boss-fakes.ts), with the same rules as
 * jobs/streams/boss-store.ts: open batches with their fenced state records, a watch whose initial
 * load the test can hold back, closes (and the tombstones they leave), on top of the finished side
 * (memory-done.ts).
 */
import type { Job } from '../../jobs/model.js'
import {
  assemble,
  doneSet,
  emptyState,
  jobIdOf,
  liveOf,
  parseJobId,
  tombstoneState,
  type BatchState,
  type SubmitRecord,
  type SubmittedJob,
} from '../../jobs/streams/index.js'
import { isReopened } from '../../jobs/streams/reopened.js'
import { errors } from '../../runner/index.js'
import type { BossStore, ClosedBatchState, OpenBatch, StateWrite } from '../../worker/boss/store-port.js'
import { newJob } from './fake-jobs.js'
import { MemoryDone, tick } from './memory-done.js'

interface Watcher {
  onBatch(b: OpenBatch): void
  onInitialDone(): void
  onClosed(c: ClosedBatchState): void
  /** Initial batches not delivered yet (when the load is held). */
  backlog: string[]
  initialDone: boolean
}

interface Stored {
  submitSeq: number
  submit: SubmitRecord
  state: { state: BatchState; revision: number } | null
}

/** The job store in memory, with the same rules as jobs/streams/boss-store.ts. */
export class MemoryStore extends MemoryDone implements BossStore {
  readonly batches = new Map<string, Stored>()
  /** Initial loads of new watches are held until releaseLoad(). */
  holdLoad = false
  /** Batch closes (after a batch's last final record) wait for this. */
  closeGate: Promise<void> | undefined
  private readonly watchers = new Set<Watcher>()

  /**
   * Store a job as the API does (a batch of one), with the state a boss recorded when it is not a
   * plain queued job (e.g. `{ state: 'running', worker, epoch: 1 }`). Watchers see the batch.
   */
  put(job: Job, submitted: Partial<SubmittedJob> = {}): void {
    this.putSilently(job, submitted)
    this.announce(parseJobId(job.id)!.batch)
  }

  /** Store `n` queued jobs of one new batch; watchers see the batch once, whole. */
  putBatch(n: number): { batch: string; jobs: Job[] } {
    const batch = parseJobId(newJob().id)!.batch
    const jobs = Array.from({ length: n }, (_, i) => newJob({ id: jobIdOf(batch, i) }))
    for (const j of jobs) this.putSilently(j)
    this.announce(batch)
    return { batch, jobs }
  }

  /** Store a job without telling the watches (the watch has not delivered it yet). */
  putSilently(job: Job, submitted: Partial<SubmittedJob> = {}): void {
    const where = parseJobId(job.id)
    if (!where) throw new Error(`not a batch job id: ${job.id}`)
    const sub: SubmittedJob = {
      function: job.function,
      payload: job.payload,
      priority: job.priority,
      timeoutMs: job.timeoutMs,
      maxAttempts: job.maxAttempts,
    }
    if (job.runAt !== undefined && job.state === 'queued' && job.attempts === 0) sub.runAt = job.runAt
    if (job.callbackUrl !== undefined) sub.callbackUrl = job.callbackUrl
    if (job.concurrencyKey !== undefined) sub.concurrencyKey = job.concurrencyKey
    Object.assign(sub, submitted)
    const existing = this.batches.get(where.batch)
    const jobs = existing ? [...existing.submit.jobs] : []
    jobs[where.index] = sub
    for (let i = 0; i < jobs.length; i++) jobs[i] ??= null
    const submit: SubmitRecord = { v: 1, batch: where.batch, createdAt: job.createdAt, jobs }
    let state = existing?.state ?? null
    const live = liveOf(job)
    if (live) {
      const base = state?.state ?? emptyState(where.batch, jobs.length, job.epoch)
      state = {
        state: {
          ...base,
          size: jobs.length,
          epoch: Math.max(base.epoch, job.epoch),
          jobs: { ...base.jobs, [String(where.index)]: live },
        },
        revision: ++this.seq,
      }
    }
    this.batches.set(where.batch, { submitSeq: existing?.submitSeq ?? ++this.seq, submit, state })
  }

  /** The job as a reader would see it now (final record, else submission + state), or undefined. */
  current(id: string): Job | undefined {
    const final = this.finals.get(id)
    if (final && !isReopened(final)) return final
    const where = final && isReopened(final) ? final.reopened : parseJobId(id)
    const b = where ? this.batches.get(where.batch) : undefined
    if (final && !b) {
      const { reopened: _r, ...job } = final
      return job
    }
    if (!where || !b || !b.submit.jobs[where.index]) return undefined
    if (b.state && doneSet(b.state.state).has(where.index)) return undefined
    return assemble(b.submit, where.index, b.state?.state.jobs[String(where.index)], b.state?.state.epoch ?? 0)
  }

  watchBatches(
    onBatch: (b: OpenBatch) => void,
    onInitialDone: () => void,
    onClosed: (c: ClosedBatchState) => void,
  ): () => void {
    const backlog = [...this.batches.entries()].sort((x, y) => x[1].submitSeq - y[1].submitSeq).map(([k]) => k)
    const w: Watcher = { onBatch, onInitialDone, onClosed, backlog, initialDone: false }
    this.watchers.add(w)
    if (!this.holdLoad) setImmediate(() => this.releaseLoad(Infinity, w))
    return () => void this.watchers.delete(w)
  }

  /** Deliver up to `n` held initial batches to every watch (all: then "initial load done"). */
  releaseLoad(n = Infinity, only?: Watcher): void {
    for (const w of only ? [only] : this.watchers) {
      if (!this.watchers.has(w) || w.initialDone) continue
      for (let i = 0; i < n && w.backlog.length > 0; i++) {
        const b = this.open(w.backlog.shift()!, true)
        if (b) w.onBatch(b)
      }
      if (w.backlog.length === 0) {
        for (const [batch, c] of this.closedStates) {
          const found = { batch, seq: c.revision, storedAtMs: c.at, size: c.state.size }
          w.onClosed({ ...found, tombstone: c.state.closed === true })
        }
        w.initialDone = true
        w.onInitialDone()
      }
    }
  }

  async readBatch(batch: string): Promise<OpenBatch | null> {
    await tick()
    return this.open(batch, true)
  }

  async writeState(state: BatchState, expect: number, signal?: AbortSignal): Promise<StateWrite> {
    await this.attempt(signal)
    // A closed batch's subject as the real store keeps it: empty, its tombstone, or a record that landed
    // after the close (a write expecting no record is stored on an empty subject).
    const open = this.batches.get(state.batch)
    const cur = open ? open.state : (this.closedStates.get(state.batch) ?? null)
    const bytes = Buffer.byteLength(JSON.stringify(state))
    if (bytes > this.maxBytes)
      throw errors.BODY_TOO_LARGE(`state of ${bytes} bytes`, { details: { bytes, max: this.maxBytes } })
    const revision = cur?.revision ?? 0
    if (revision !== expect) {
      if (cur && cur.state.epoch > state.epoch)
        throw errors.STALE_EPOCH(`batch ${state.batch} was written by epoch ${cur.state.epoch}`)
      return { ok: false, current: cur?.state ?? null, revision }
    }
    const stored = { state, revision: ++this.seq }
    if (open) open.state = stored
    else this.closedStates.set(state.batch, { ...stored, at: Date.now() })
    this.writes.push({ kind: 'state', key: state.batch, epoch: state.epoch, revision: stored.revision })
    return { ok: true, revision: stored.revision }
  }

  /** Batches of reopened runs are stored without the watches seeing them (not delivered yet). */
  reopenUnseen = false

  async submitReopened(sub: SubmitRecord, signal?: AbortSignal): Promise<boolean> {
    await this.attempt(signal)
    if (this.batches.has(sub.batch) || this.closed.has(sub.batch)) return false
    this.batches.set(sub.batch, { submitSeq: ++this.seq, submit: sub, state: null })
    if (!this.reopenUnseen) this.announce(sub.batch)
    return true
  }

  /** Batches closed (a submission of one again is refused, as the store's dedupe window does). */
  private readonly closed = new Set<string>()
  /** Every close, with whether it left a tombstone. */
  readonly closes: Array<{ batch: string; tombstone: boolean }> = []
  /** State subjects of batches no longer open: tombstones, or records that landed after the close. */
  readonly closedStates = new Map<string, { state: BatchState; revision: number; at: number }>()
  /** Tombstones removed, by sequence. */
  readonly removedTombstones: number[] = []

  async closeBatch(
    batch: string,
    _submitSeq: number,
    stateRevision: number,
    _signal?: AbortSignal,
    tombstone?: { epoch: number; size: number },
  ): Promise<number> {
    await tick()
    if (this.closeGate) await this.closeGate
    this.batches.delete(batch)
    this.closed.add(batch)
    this.closes.push({ batch, tombstone: tombstone !== undefined })
    if (!tombstone) {
      if (this.closedStates.get(batch)?.revision === stateRevision) this.closedStates.delete(batch)
      return 0
    }
    const revision = ++this.seq
    const state = tombstoneState(batch, tombstone.size, tombstone.epoch)
    this.closedStates.set(batch, { state, revision, at: Date.now() })
    this.writes.push({ kind: 'state', key: batch, epoch: tombstone.epoch, revision })
    return revision
  }

  async removeTombstone(seq: number): Promise<void> {
    await tick()
    for (const [batch, c] of this.closedStates) if (c.revision === seq) this.closedStates.delete(batch)
    this.removedTombstones.push(seq)
  }

  async readSubmitted(id: string): Promise<{ submit: SubmitRecord; index: number } | null> {
    const where = parseJobId(id)
    const b = where ? this.batches.get(where.batch) : undefined
    return where && b ? { submit: b.submit, index: where.index } : null
  }

  /** A previous boss's late write of a batch's state record (watchers are not told, as in the real store). */
  writeRaw(batch: string, state: BatchState): void {
    const b = this.batches.get(batch)!
    b.state = { state, revision: ++this.seq }
  }

  private open(batch: string, adopted = false): OpenBatch | null {
    const b = this.batches.get(batch)
    if (!b) return null
    return {
      batch,
      submitSeq: b.submitSeq,
      submit: b.submit,
      state: b.state?.state ?? null,
      stateRevision: b.state?.revision ?? 0,
      bytes: Buffer.byteLength(JSON.stringify(b.submit)),
      adopted,
    }
  }

  private announce(batch: string): void {
    for (const w of this.watchers) {
      if (w.initialDone) {
        const b = this.open(batch)
        if (b) w.onBatch(b)
      } else if (!w.backlog.includes(batch)) w.backlog.push(batch)
    }
  }
}
