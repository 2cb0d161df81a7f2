/**
 * The finished side of the bench's job store (test/helpers/memory-store.ts extends it): final and
 * reopened records with their DONE sequences, the DONE checkpoint, the listing index, kept attempt
 * history and queued callbacks — with the rules of jobs/streams/boss-store.ts, and knobs a test turns
 * to hold or fail writes. One sequence numbers every record, as one stream would.
 */
import type { AttemptEntry } from '../../jobs/attempts.js'
import type { Job, JobState } from '../../jobs/model.js'
import type { GroupWrite } from '../../jobs/streams/boss-store.js'
import type { DoneTail } from '../../jobs/streams/done-tail.js'
import type { FinalGroup } from '../../jobs/streams/final-groups.js'
import { compactGroup } from '../../jobs/streams/group-codec.js'
import type { StoredDone } from '../../jobs/streams/reopen-writes.js'
import { isReopened, type DoneRecord, type ReopenedRecord } from '../../jobs/streams/reopened.js'
import { errors } from '../../runner/index.js'
import type { DoneCheckpoint, StoredCheckpoint } from '../../worker/boss/store-port.js'

/** One turn of the event loop: the bench's store answers asynchronously, as a real one does. */
export const tick = () => new Promise((r) => setImmediate(r))

export abstract class MemoryDone {
  readonly finals = new Map<string, Job>()
  /** DONE sequence of each final record. */
  protected readonly finalSeqs = new Map<string, number>()
  /** When each final record was written (epoch ms), as the store's clock would say. */
  protected readonly finalTimes = new Map<string, number>()
  /** The last DONE checkpoint written (undefined: none). */
  checkpoint: DoneCheckpoint | undefined
  protected checkpointRevision = 0
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
  /** Writes wait for this (a boss "in the middle of a write"). */
  gate: Promise<void> | undefined
  /** The final record of these jobs waits for its promise (a write in flight). */
  readonly finalGates = new Map<string, Promise<void>>()
  /** Fail this many write attempts with a transient error. */
  failWrites = 0
  protected seq = 0

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
      if (!this.finalSeqs.has(job.id)) this.ownSeq(job.id)
      return { job: existing, created: false, seq: this.finalSeqs.get(job.id)! }
    }
    this.finals.set(job.id, job)
    this.finalSeqs.set(job.id, ++this.seq)
    this.ownSeqs.set(job.id, this.seq)
    this.finalTimes.set(job.id, Date.now())
    this.writes.push({ kind: 'final', key: job.id, epoch: job.epoch, revision: this.seq })
    return { job, created: true, seq: this.seq }
  }

  /** Every group of finals written, in order (jobs/streams/final-groups.ts). */
  readonly groupWrites: Array<{ batch: string; epoch: number; ids: string[]; seq: number }> = []
  /** Stored groups by DONE sequence, and the chain of each part of a batch (`<batch>.<part>`). */
  protected readonly groups = new Map<number, FinalGroup>()
  protected readonly groupChains = new Map<string, number[]>()
  /** The last sequence of each job's own subject (a grouped final has none). */
  protected readonly ownSeqs = new Map<string, number>()

  /** Group writes begun (stored or not). */
  groupCalls = 0

  async writeFinalGroup(group: FinalGroup, expect: number, signal?: AbortSignal): Promise<GroupWrite> {
    this.groupCalls++
    await this.attempt(signal)
    for (const j of group.finals) {
      const gate = this.finalGates.get(j.id)
      if (gate) await gate
    }
    const key = `${group.batch}.${group.part}`
    const chain = this.groupChains.get(key) ?? []
    const last = chain.at(-1) ?? 0
    if (last !== expect) {
      const after = chain.filter((seq) => seq > expect).map((seq) => ({ seq, group: this.groups.get(seq)! }))
      return { ok: false, after, last }
    }
    // Measured as the store encodes it (jobs/streams/boss-store.ts writeFinalGroup).
    const bytes = Buffer.byteLength(JSON.stringify(compactGroup(group)))
    if (bytes > this.maxBytes)
      throw errors.BODY_TOO_LARGE(`group of ${bytes} bytes`, {
        details: { batch: group.batch, bytes, max: this.maxBytes },
      })
    const seq = ++this.seq
    this.groups.set(seq, group)
    this.groupChains.set(key, [...chain, seq])
    for (const job of group.finals) {
      this.finals.set(job.id, job)
      this.finalSeqs.set(job.id, seq)
      this.finalTimes.set(job.id, Date.now())
      this.writes.push({ kind: 'final', key: job.id, epoch: group.epoch, revision: seq })
    }
    this.groupWrites.push({ batch: group.batch, epoch: group.epoch, ids: group.finals.map((j) => j.id), seq })
    return { ok: true, seq }
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
    if (!this.finalSeqs.has(id)) this.ownSeq(id)
    const record: DoneRecord = isReopened(job) ? { kind: 'reopened', job } : { kind: 'final', job }
    return { record, seq: this.finalSeqs.get(id)!, subjectSeq: this.ownSeqs.get(id) ?? 0 }
  }

  /** Every reopened record written, in order. */
  readonly reopenWrites: ReopenedRecord[] = []

  async writeReopened(rec: ReopenedRecord, expect: number, signal?: AbortSignal): Promise<number | null> {
    await this.attempt(signal)
    if ((this.ownSeqs.get(rec.id) ?? 0) !== expect) return null
    this.finals.set(rec.id, rec)
    this.ownSeq(rec.id)
    this.reopenWrites.push(rec)
    return this.seq
  }

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

  /** A final record written by a boss that died before its batch's done mask (the batch is unchanged). */
  putFinalOnly(job: Job): void {
    this.finals.set(job.id, job)
    this.ownSeq(job.id)
    this.finalTimes.set(job.id, Date.now())
  }

  /** A new sequence for a record on job `id`'s own subject. */
  protected ownSeq(id: string): number {
    const seq = ++this.seq
    this.finalSeqs.set(id, seq)
    this.ownSeqs.set(id, seq)
    return seq
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

  protected async attempt(signal?: AbortSignal): Promise<void> {
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
