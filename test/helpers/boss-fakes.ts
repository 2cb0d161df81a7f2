/**
 * The boss test bench: in-memory stand-ins for what a boss term talks to — the job store (fenced
 * compare-and-set, a watch whose initial load the test can hold back, writes it can hold or fail),
 * the registry, the NATS transport and the workers behind it — so a case about the boss's decisions
 * runs in milliseconds. Anything about real ZooKeeper or NATS behaviour stays in real-server tests.
 */
import type { FunctionLimits, LimitsOverride } from '../../jobs/limits.js'
import type { LimitsSource } from '../../jobs/limits-store.js'
import {
  windowKey,
  type RateLedgerPort,
  type RateWindowRecord,
  type RateWriteResult,
  type StoredRateWindow,
} from '../../jobs/rate-ledger-store.js'
import type { AttemptEntry } from '../../jobs/attempts.js'
import type { DoneTail } from '../../jobs/streams/done-tail.js'
import type { StoredDone } from '../../jobs/streams/reopen-writes.js'
import { isReopened, type DoneRecord, type ReopenedRecord } from '../../jobs/streams/reopened.js'
import { EventEmitter } from 'node:events'
import type { Test } from 'tap'
import { errors, silentLogger, type MessageHandler, type ServiceEntry, type Transport } from '../../runner/index.js'
import type { Job, JobState } from '../../jobs/model.js'
import {
  INVENTORY_PAGE,
  MSG,
  type AttemptOutcome,
  type AttemptResult,
  type BossStatusReply,
  type InventoryReply,
  type ResultsReply,
} from '../../jobs/protocol.js'
import { DEFAULT_BOSS_SETTINGS, type BossSettings } from '../../worker/boss/settings.js'
import type {
  BossStore,
  ClosedBatchState,
  DoneCheckpoint,
  OpenBatch,
  StateWrite,
  StoredCheckpoint,
} from '../../worker/boss/store-port.js'
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
import { BossTerm } from '../../worker/boss/term.js'
import { writeOwnFinal } from '../../worker/agent/own-final.js'
import { waitFor } from './wait.js'

let seq = 0
/** A batch id (ULID-shaped, increasing). */
export function batchId(): string {
  return `01J${String(++seq).padStart(23, '0')}`
}

/** A job id: job 0 of a new batch. */
export function jobId(): string {
  return jobIdOf(batchId(), 0)
}

/** A job as the API stores it. */
export function newJob(over: Partial<Job> = {}): Job {
  return {
    id: jobId(),
    function: 'echo',
    state: 'queued',
    attempts: 0,
    maxAttempts: 1,
    payload: null,
    priority: 0,
    timeoutMs: 60_000,
    createdAt: new Date().toISOString(),
    epoch: 0,
    ...over,
  }
}

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
export class MemoryStore implements BossStore {
  readonly batches = new Map<string, Stored>()
  readonly finals = new Map<string, Job>()
  /** DONE sequence of each final record. */
  private readonly finalSeqs = new Map<string, number>()
  /** When each final record was written (epoch ms), as the store's clock would say. */
  private readonly finalTimes = new Map<string, number>()
  /** The last DONE checkpoint written (undefined: none). */
  checkpoint: DoneCheckpoint | undefined
  private checkpointRevision = 0
  /** The `after` of every read of DONE's tail, in order. */
  readonly tailReads: number[] = []
  /** Every state record and final record that landed, in order. */
  readonly writes: Array<{ kind: 'state' | 'final'; key: string; epoch: number; revision: number }> = []
  /** Every listing index entry written, in order, with when (epoch ms). */
  readonly indexed: Array<{ id: string; state: string; run: number; at: number }> = []
  /** Every queued callback task, with whether the job's final record was stored before it. */
  readonly callbackTasks: Array<{ jobId: string; run: number; finalBefore: boolean }> = []
  /** Every write attempt (including refused and failed ones). */
  writeCalls = 0
  maxBytes = 1024 * 1024 - 1024
  /** Initial loads of new watches are held until releaseLoad(). */
  holdLoad = false
  /** Writes wait for this (a boss "in the middle of a write"). */
  gate: Promise<void> | undefined
  /** Batch closes (after a batch's last final record) wait for this. */
  closeGate: Promise<void> | undefined
  /** The final record of these jobs waits for its promise (a write in flight). */
  readonly finalGates = new Map<string, Promise<void>>()
  /** Fail this many write attempts with a transient error. */
  failWrites = 0
  private seq = 0
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

  /** Announced final writes, in order: the record and the subject its acknowledgement goes to. */
  readonly announcedWrites: Array<{ job: Job; ack: string }> = []

  async writeFinal(
    job: Job,
    signal?: AbortSignal,
    announce?: (ackSubject: string) => void,
  ): Promise<{ job: Job; created: boolean; seq: number }> {
    await this.attempt(signal)
    if (announce) {
      const ack = `acks.fake.${this.announcedWrites.length + 1}`
      this.announcedWrites.push({ job, ack })
      announce(ack)
    }
    const gate = this.finalGates.get(job.id)
    if (gate) await gate
    const bytes = Buffer.byteLength(JSON.stringify(job))
    if (bytes > this.maxBytes)
      throw errors.BODY_TOO_LARGE(`record of ${bytes} bytes`, { details: { id: job.id, bytes, max: this.maxBytes } })
    const existing = this.finals.get(job.id)
    if (existing && (isReopened(existing) || (existing.run ?? 0) < (job.run ?? 0))) this.finals.delete(job.id)
    else if (existing) {
      // A record put straight into `finals` by a test gets its sequence when first asked.
      if (!this.finalSeqs.has(job.id)) this.finalSeqs.set(job.id, ++this.seq)
      return { job: existing, created: false, seq: this.finalSeqs.get(job.id)! }
    }
    this.finals.set(job.id, job)
    this.finalSeqs.set(job.id, ++this.seq)
    this.finalTimes.set(job.id, Date.now())
    this.writes.push({ kind: 'final', key: job.id, epoch: job.epoch, revision: this.seq })
    return { job, created: true, seq: this.seq }
  }

  async enqueueCallback(task: { jobId: string; run: number }, signal?: AbortSignal): Promise<void> {
    await this.attempt(signal)
    this.callbackTasks.push({ ...task, finalBefore: this.finals.has(task.jobId) })
  }

  async readCheckpoint(signal?: AbortSignal): Promise<StoredCheckpoint> {
    await tick()
    if (signal?.aborted) throw errors.NOT_LEADER('read abandoned')
    return { checkpoint: this.checkpoint ?? null, revision: this.checkpointRevision }
  }

  async writeCheckpoint(
    cp: DoneCheckpoint,
    expect: number,
    signal?: AbortSignal,
  ): Promise<StoredCheckpoint & { ok: boolean }> {
    await this.attempt(signal)
    if (expect !== this.checkpointRevision)
      return { ok: false, checkpoint: this.checkpoint ?? null, revision: this.checkpointRevision }
    this.checkpoint = cp
    this.checkpointRevision = ++this.seq
    return { ok: true, checkpoint: cp, revision: this.checkpointRevision }
  }

  async finalsAfter(after: number): Promise<DoneTail> {
    await tick()
    this.tailReads.push(after)
    const tail = [...this.finalSeqs]
      .filter(([, seq]) => seq > after)
      .sort((x, y) => x[1] - y[1])
      .map(([id, seq]) => ({ job: this.finals.get(id)!, seq, at: this.finalTimes.get(id) ?? 0 }))
    const finals = tail.filter((f) => !isReopened(f.job))
    const reopened = tail.filter((f) => isReopened(f.job)).map((f) => ({ job: f.job as ReopenedRecord, seq: f.seq }))
    return { finals, reopened, lastSeq: Math.max(after, ...this.finalSeqs.values()) }
  }

  /** Every readDone, by job id, in order; fail this many of them with a transient error. */
  readonly doneReads: string[] = []
  failReadsDone = 0

  async readDone(id: string): Promise<StoredDone | null> {
    await tick()
    this.doneReads.push(id)
    if (this.failReadsDone > 0 && this.failReadsDone--) throw errors.STORE('transient read failure (test)')
    const job = this.finals.get(id)
    if (!job) return null
    if (!this.finalSeqs.has(id)) this.finalSeqs.set(id, ++this.seq)
    const record: DoneRecord = isReopened(job) ? { kind: 'reopened', job } : { kind: 'final', job }
    return { record, seq: this.finalSeqs.get(id)! }
  }

  /** Batches of reopened runs are stored without the watches seeing them (not delivered yet). */
  reopenUnseen = false

  /** Every reopened record written, in order. */
  readonly reopenWrites: ReopenedRecord[] = []

  async writeReopened(rec: ReopenedRecord, expect: number, signal?: AbortSignal): Promise<number | null> {
    await this.attempt(signal)
    if ((this.finalSeqs.get(rec.id) ?? 0) !== expect) return null
    this.finals.set(rec.id, rec)
    this.finalSeqs.set(rec.id, ++this.seq)
    this.reopenWrites.push(rec)
    return this.seq
  }

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

  /** History entries kept per job (the ATTEMPTS stream). */
  readonly attemptLog = new Map<string, AttemptEntry[]>()

  async logAttempts(id: string, entries: readonly AttemptEntry[]): Promise<void> {
    await tick()
    this.attemptLog.set(id, [...(this.attemptLog.get(id) ?? []), ...entries])
  }

  async loggedAttempts(id: string): Promise<AttemptEntry[]> {
    await tick()
    return [...(this.attemptLog.get(id) ?? [])]
  }

  async indexedSince(sinceMs: number): Promise<Set<string>> {
    await tick()
    return new Set(this.indexed.filter((e) => e.at >= sinceMs).map((e) => (e.run ? `${e.id}@${e.run}` : e.id)))
  }

  async index(entries: ReadonlyArray<{ id: string; state: JobState; fn: string; run?: number }>): Promise<void> {
    await tick()
    for (const e of entries) this.indexed.push({ id: e.id, state: e.state, run: e.run ?? 0, at: Date.now() })
  }

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

  /** A final record written by a boss that died before its batch's done mask (the batch is unchanged). */
  putFinalOnly(job: Job): void {
    this.finals.set(job.id, job)
    this.finalSeqs.set(job.id, ++this.seq)
    this.finalTimes.set(job.id, Date.now())
  }

  /** The DONE sequence of a job's final record (undefined: none). */
  finalSeq(id: string): number | undefined {
    return this.finalSeqs.get(id)
  }

  /** A checkpoint written behind the boss's back (forged, or by another epoch). */
  writeCheckpointRaw(cp: DoneCheckpoint): void {
    this.checkpoint = cp
    this.checkpointRevision = ++this.seq
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

  private async attempt(signal?: AbortSignal): Promise<void> {
    this.writeCalls++
    if (signal?.aborted) throw errors.NOT_LEADER('write abandoned')
    await tick()
    if (this.failWrites > 0) {
      this.failWrites--
      throw errors.STORE('transient store failure (test)')
    }
    if (this.gate) await this.gate
    if (signal?.aborted) throw errors.NOT_LEADER('write abandoned')
  }
}

const tick = () => new Promise((r) => setImmediate(r))

/** A worker process as the boss sees it on NATS: takes dispatches, answers inventories and aborts. */
export class FakeWorker {
  readonly address: string
  /** Every job id it was asked to start, in order (a second start of an id is a run twice). */
  readonly starts: string[] = []
  readonly running = new Map<string, { attempt: number; epoch: number; startedAt: string; run?: number }>()
  /**
   * When the boss started each job it took, as the dispatched record says (`startedAt`, the time
   * the boss's flow gate counted): what rate-limit tests measure. `running`'s `startedAt` is when
   * this fake received it, later by however long the dispatch took.
   */
  readonly dispatchedAt = new Map<string, number>()
  /** Every dispatched job as it arrived (the message's fields, not the boss's record). */
  readonly received: Array<Record<string, unknown>> = []
  /** Finished attempts the boss has not acknowledged. */
  readonly held = new Map<string, AttemptResult>()
  readonly aborted: string[] = []
  /** How it answers: normally, not at all (timeout), or it has no subscription (no responders). */
  mode: 'ok' | 'silent' | 'gone' = 'ok'
  dispatchRequests = 0
  /** The limits its modules declare (advertised in its registration). */
  limits: Record<string, FunctionLimits> | undefined

  constructor(
    readonly id: string,
    public capacity = 4,
    readonly functions: string[] = ['echo'],
  ) {
    this.address = `w.${id}`
  }

  entry(): ServiceEntry {
    return {
      id: this.id,
      address: this.address,
      host: 'test',
      pid: 1,
      meta: {
        role: 'worker',
        functions: this.functions,
        capacity: this.capacity,
        ...(this.limits ? { limits: this.limits } : {}),
      },
      registeredAt: new Date().toISOString(),
    }
  }

  handle(type: string, body: any): unknown {
    switch (type) {
      case MSG.dispatch: {
        this.dispatchRequests++
        return {
          answers: (body.jobs as Job[]).map((j) => {
            this.received.push({ ...j })
            if (this.running.has(j.id) || this.held.has(j.id)) return { id: j.id, accepted: true }
            if (this.running.size >= this.capacity) return { id: j.id, accepted: false, reason: 'full' }
            this.starts.push(j.id)
            this.dispatchedAt.set(j.id, Date.parse(j.startedAt!))
            this.running.set(j.id, {
              attempt: j.attempts,
              epoch: body.epoch,
              startedAt: new Date().toISOString(),
              ...(j.run ? { run: j.run } : {}),
            })
            return { id: j.id, accepted: true }
          }),
        }
      }
      case MSG.inventory: {
        const running = [...this.running].map(([jobId, r]) => ({
          jobId,
          attempt: r.attempt,
          epoch: r.epoch,
          startedAt: r.startedAt,
        }))
        const held = [...this.held.values()]
          .map((r) => ({ jobId: r.jobId, attempt: r.attempt }))
          .filter((h) => body.after === undefined || h.jobId > body.after)
        const reply: InventoryReply = { worker: this.id, running, held: held.slice(0, INVENTORY_PAGE) }
        return reply
      }
      case MSG.abort:
        this.aborted.push(body.jobId)
        return { aborted: this.running.has(body.jobId) }
      default:
        throw errors.BAD_MESSAGE(`unexpected ${type}`)
    }
  }

  /** Finish a running job: the result is held until a boss acknowledges it. */
  finish(id: string, outcome: AttemptOutcome = { ok: true, result: id }): AttemptResult {
    const r = this.running.get(id)
    if (!r) throw new Error(`${this.id} does not run ${id}`)
    this.running.delete(id)
    const result: AttemptResult = {
      jobId: id,
      attempt: r.attempt,
      epoch: r.epoch,
      worker: this.id,
      startedAt: r.startedAt,
      finishedAt: new Date().toISOString(),
      outcome,
    }
    if (r.run) result.run = r.run
    this.held.set(id, result)
    return result
  }

  /**
   * Finish a running job successfully the way a worker does when its dispatch carried `final`: write
   * the final record itself (worker/agent/own-final.ts) into `store`, then hold the result.
   */
  async finishWritingFinal(id: string, store: BossStore): Promise<AttemptResult> {
    const dispatched = this.received.findLast((j) => j.id === id)
    const basis = dispatched?.final as Job | undefined
    if (!basis) throw new Error(`${this.id} was not let write the final of ${id}`)
    const result = this.finish(id)
    await writeOwnFinal(
      result,
      { ...basis, payload: dispatched!.payload },
      async (job) => {
        const w = await store.writeFinal(job)
        return w.created ? w.seq : undefined
      },
      silentLogger(),
    )
    return result
  }

  /** Send every held result to `term` (as the outbox does); forget the acknowledged ones. */
  async deliver(term: BossTerm): Promise<ResultsReply> {
    const reply = await term.onResults({ results: [...this.held.values()] })
    for (const id of reply.acked) this.held.delete(id)
    return reply
  }
}

/** NATS between the boss and the fake workers. */
export class FakeTransport extends EventEmitter implements Transport {
  readonly address = 'w.boss'
  connected = true
  readonly workers = new Map<string, FakeWorker>()
  readonly sent: Array<{ address: string; type: string; body: unknown }> = []
  /** Fail requests before sending, as the real transport does while disconnected. */
  disconnected = false

  add(...workers: FakeWorker[]): void {
    for (const w of workers) this.workers.set(w.address, w)
  }

  send(address: string, type: string, body: unknown): boolean {
    this.sent.push({ address, type, body })
    const w = this.workers.get(address)
    if (w && w.mode === 'ok') w.handle(type, body)
    return true
  }

  async request<R>(address: string, type: string, body: unknown, opts: { timeoutMs?: number } = {}): Promise<R> {
    if (this.disconnected)
      throw errors.NATS_NOT_CONNECTED('not connected (test)', { details: { to: address, type, sent: false } })
    await new Promise((r) => setImmediate(r))
    const w = this.workers.get(address)
    if (!w || w.mode === 'gone') throw errors.NO_RESPONDERS(`no process listens at ${address}`)
    if (w.mode === 'silent') {
      await new Promise((r) => setTimeout(r, opts.timeoutMs ?? 100))
      throw errors.REQUEST_TIMEOUT(`no reply from ${address}`)
    }
    return w.handle(type, body) as R
  }

  handle(_type: string, _handler: MessageHandler): void {}

  async close(): Promise<void> {}
}

/** The registry as the boss sees it: worker registrations and live nodes, with change events. */
export class FakeRegistry extends EventEmitter {
  readonly workers = new Map<string, ServiceEntry>()
  readonly nodes = new Map<string, ServiceEntry>()

  /** A worker process: registered as a worker and listed as a live node. */
  join(w: FakeWorker): void {
    this.workers.set(w.id, w.entry())
    this.nodes.set(w.id, w.entry())
    this.changed()
  }

  /** Its ZooKeeper session ended: registration and node entry vanish. */
  leave(id: string): void {
    this.workers.delete(id)
    this.nodes.delete(id)
    this.changed()
  }

  changed(): void {
    this.emit('change', 'worker', [...this.workers.values()])
    this.emit('peers', [...this.nodes.values()])
  }

  async getCapable(service: string): Promise<ServiceEntry[]> {
    return service === 'worker' ? [...this.workers.values()] : []
  }

  async getPeers(): Promise<ServiceEntry[]> {
    return [...this.nodes.values()]
  }

  async register(): Promise<void> {}
  async updateMeta(): Promise<void> {}
  async unregister(): Promise<void> {}
  async nsendCapable(): Promise<number> {
    return 0
  }
  async nsendPeers(): Promise<number> {
    return 0
  }
}

/** The limits store in memory: overrides set by a test reach the watching terms at once. */
export class MemoryLimits implements LimitsSource {
  private readonly overrides = new Map<string, LimitsOverride>()
  private readonly watchers = new Set<(fn: string, o: LimitsOverride | undefined) => void>()

  set(fn: string, o: LimitsOverride | undefined): void {
    if (o === undefined) this.overrides.delete(fn)
    else this.overrides.set(fn, o)
    for (const w of this.watchers) w(fn, o)
  }

  async watch(onChange: (fn: string, o: LimitsOverride | undefined) => void): Promise<() => void> {
    this.watchers.add(onChange)
    for (const [fn, o] of this.overrides) onChange(fn, o)
    return () => this.watchers.delete(onChange)
  }
}

/** The rate windows store in memory (compare-and-set on revisions, as the KV bucket does). */
export class MemoryRates implements RateLedgerPort {
  readonly windows = new Map<string, StoredRateWindow>()
  private revision = 0
  /** Every write that landed, in order. */
  readonly writes: RateWindowRecord[] = []

  /** A window written behind the boss's back (by another epoch). */
  put(rec: RateWindowRecord): void {
    this.windows.set(windowKey(rec.fn, rec.key), { ...rec, starts: [...rec.starts], revision: ++this.revision })
  }

  /** Reads wait for this (a slow store), then fail `failReads` times. */
  readGate: Promise<void> | undefined
  failReads = 0

  async readSince(since: number): Promise<StoredRateWindow[]> {
    await tick()
    if (this.readGate) await this.readGate
    if (this.failReads > 0 && this.failReads--) throw new Error('rates store unavailable')
    return [...this.windows.values()].filter((w) => (w.starts.at(-1) ?? 0) >= since)
  }

  /** Writes wait for this (a slow store); `writesStarted` counts them as they begin. */
  writeGate: Promise<void> | undefined
  writesStarted = 0

  async write(rec: RateWindowRecord, revision: number): Promise<RateWriteResult> {
    this.writesStarted++
    await tick()
    if (this.writeGate) await this.writeGate
    const k = windowKey(rec.fn, rec.key)
    const had = this.windows.get(k)
    if ((had?.revision ?? 0) !== revision) return { ok: false, revision: had?.revision ?? 0, stored: had ?? null }
    this.put(rec)
    this.writes.push(rec)
    return { ok: true, revision: this.revision }
  }
}

/** Fast settings for the bench. */
export const BENCH_SETTINGS: BossSettings = {
  ...DEFAULT_BOSS_SETTINGS,
  reconcileIntervalMs: 50,
  inventoryTimeoutMs: 100,
  dispatchTimeoutMs: 200,
  runningWriteDelayMs: 0,
  unreachableGraceMs: 300,
}

export interface Bench {
  store: MemoryStore
  transport: FakeTransport
  registry: FakeRegistry
  /** Jobs announced as finished, in order. */
  finished: Job[]
  /** Ids of the finished jobs announced with their record (their submitter waits). */
  announcedWithRecord: string[]
  /** Final records announced as their write was sent, with the write's acknowledgement subject. */
  announcedFinals: Array<{ job: Job; ack: string }>
  fenced: string[]
  stats: BossStatusReply[]
  /** What the terms told as `job.redispatched`. */
  redispatched: { worker: string; jobs: number; reason: string }[]
  /** Operators' limit overrides, as the limits store would deliver them. */
  limits: MemoryLimits
  /** The stored rate windows. */
  rates: MemoryRates
  /** A term of `epoch` over this bench. */
  term(
    epoch: number,
    over?: { settings?: Partial<BossSettings>; confirmLeadership?: boolean; isCurrent?: () => boolean },
  ): BossTerm
}

export function bench(...workers: FakeWorker[]): Bench {
  const store = new MemoryStore()
  const transport = new FakeTransport()
  const registry = new FakeRegistry()
  transport.add(...workers)
  for (const w of workers) registry.join(w)
  const b: Bench = {
    store,
    transport,
    registry,
    finished: [],
    announcedWithRecord: [],
    announcedFinals: [],
    fenced: [],
    stats: [],
    redispatched: [],
    limits: new MemoryLimits(),
    rates: new MemoryRates(),
    term(epoch, over = {}) {
      return new BossTerm({
        selfId: 'boss',
        epoch,
        since: new Date().toISOString(),
        isCurrent: over.isCurrent ?? (() => true),
        store,
        transport,
        registry: registry,
        addressOf: (id) => `w.${id}`,
        publishFinished: (job, withRecord) => {
          b.finished.push(job)
          if (withRecord) b.announcedWithRecord.push(job.id)
        },
        announceFinal: (job, ack) => b.announcedFinals.push({ job, ack }),
        publishStats: (s) => b.stats.push(s),
        onFenced: (reason) => b.fenced.push(reason),
        onRedispatched: (worker, jobs, reason) => b.redispatched.push({ worker, jobs, reason }),
        confirmLeadership: async () => over.confirmLeadership ?? false,
        settings: { ...BENCH_SETTINGS, ...over.settings },
        limits: b.limits,
        rates: b.rates,
        logger: silentLogger(),
      })
    },
  }
  return b
}

/** One worker, one job, and a term of epoch 1 that has dispatched the job to it (stopped with `t`). */
export async function oneJobRunning(t: Test): Promise<{ w1: FakeWorker; b: Bench; job: Job; term: BossTerm }> {
  const w1 = new FakeWorker('w1')
  const b = bench(w1)
  const job = newJob()
  b.store.put(job)
  const term = b.term(1)
  t.teardown(() => term.stop())
  await term.start()
  await waitFor(() => w1.starts.includes(job.id), { what: 'running' })
  return { w1, b, job, term }
}
