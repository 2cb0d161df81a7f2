/**
 * The boss's side of the job store. A new boss reads the STATE stream whole (one record per open
 * batch, and the tombstones of recently closed ones), then follows SUBMIT from its start
 * (batch-watch.ts). Nothing finished is read (DONE and INDEX are written, never loaded), so takeover
 * costs what the open batches cost. Writes: a batch's state record by fenced compare-and-set (a
 * record written by a newer epoch is never overwritten: STALE_EPOCH), a job's final record once (the
 * first final record written stands), finished ids to the listing index, and the removal of a batch
 * whose jobs are all final (leaving a tombstone when an older epoch may still write it).
 *
 * A final record is written before its batch's done mask, so a boss dying in between leaves a final
 * record that the batch's state does not show. Bosses therefore record how far DONE is settled (the
 * checkpoint, fenced like a state record) and a new boss reads the final records after it — the last
 * moments of its predecessor, not the history.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { attemptEntryFrom, MAX_HISTORY_ENTRIES, type AttemptEntry } from '../attempts.js'
import type { Job, JobState } from '../model.js'
import { isWrongLastSequence } from '../store-codec.js'
import { watchOpenBatches, type ClosedBatchState, type OpenBatch } from './batch-watch.js'
import { readDoneTail, type DoneTail } from './done-tail.js'
import { readIndexedSince } from './index-tail.js'
import { decodeDone, indexEntry, type ReopenedRecord } from './reopened.js'
import { decodeGroup, type FinalGroup, type StoredGroup } from './final-groups.js'
import { compactGroup } from './group-codec.js'
import { ReopenWrites, type StoredDone } from './reopen-writes.js'
import { deliveryId } from '../callbacks/policy.js'
import { callbackStreams, callbackTaskSubject, type CallbackTask } from '../callbacks/store.js'
import type { StreamIO } from './io.js'
import { parseJobId, type StreamNames, type Subjects } from './layout.js'
import {
  decodeCheckpoint,
  decodeState,
  decodeSubmit,
  encode,
  parseJson,
  type BatchState,
  type DoneCheckpoint,
  type SubmitRecord,
  tombstoneState,
} from './records.js'

export type { ClosedBatchState, OpenBatch } from './batch-watch.js'

/** The checkpoint as stored, with its revision (for the next compare-and-set). */
export interface StoredCheckpoint {
  checkpoint: DoneCheckpoint | null
  revision: number
}

/** A finished job as the listing index records it. */
export interface IndexedJob {
  id: string
  state: JobState
  fn: string
  /** Its run (0 or absent: never retried). */
  run?: number
}

/** The outcome of a group write: stored at `seq`, or the groups stored since `expect` and the chain's last sequence. */
export type GroupWrite = { ok: true; seq: number } | { ok: false; after: StoredGroup[]; last: number }

/** The outcome of a state write: written, or the record changed since `expect` (here it is). */
export type StateWrite = { ok: true; revision: number } | { ok: false; current: BatchState | null; revision: number }

export interface BossStoreDeps {
  js: JetStreamClient
  jsm: JetStreamManager
  io: StreamIO
  subjects: Subjects
  streams: StreamNames
  log: Logger
  maxPayload(): number
}

export class BossJobStore {
  private readonly reopens: ReopenWrites
  constructor(private readonly d: BossStoreDeps) {
    this.reopens = new ReopenWrites(d)
  }

  /**
   * Every open batch (with its state), then `onInitialDone()`, then each batch submitted later; the
   * state records found without an open batch go to `onClosed` (batch-watch.ts). Returns a stop function.
   */
  watchBatches(
    onBatch: (b: OpenBatch) => void,
    onInitialDone: () => void,
    onClosed?: (c: ClosedBatchState) => void,
  ): () => void {
    return watchOpenBatches(this.d, onBatch, onInitialDone, onClosed)
  }

  /**
   * One open batch read directly (a cancel for a job whose batch the watch has not delivered yet); null when
   * closed or never stored.
   */
  async readBatch(batch: string): Promise<OpenBatch | null> {
    const { io, streams, subjects } = this.d
    const [subMsg, stateMsg] = await Promise.all([
      io.last(streams.submit, subjects.submit(batch)),
      io.last(streams.state, subjects.state(batch)),
    ])
    const submit = subMsg ? decodeSubmit(subMsg.data, batch) : null
    if (!subMsg || !submit) return null
    const state = stateMsg ? decodeState(stateMsg.data, batch) : null
    return {
      batch,
      submitSeq: subMsg.seq,
      submit,
      state,
      stateRevision: state ? stateMsg!.seq : 0,
      bytes: subMsg.data.length,
      adopted: true,
    }
  }

  /**
   * Write a batch's state record if the stored one is still at `expect` (0: none). Throws
   * STALE_EPOCH when the stored record carries a newer epoch; otherwise a lost race answers with
   * the current record so the caller can merge and try again.
   */
  async writeState(state: BatchState, expect: number, signal?: AbortSignal): Promise<StateWrite> {
    const { io, streams, subjects } = this.d
    const subject = subjects.state(state.batch)
    try {
      const ack = await io.publish(streams.state, subject, encode(state), {
        expectLastSubjectSequence: expect,
        ...(signal ? { signal } : {}),
      })
      return { ok: true, revision: ack.seq }
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err
      if (!isWrongLastSequence(cause)) throw err
      const cur = await io.last(streams.state, subject, signal)
      const current = cur ? decodeState(cur.data, state.batch) : null
      if (current && current.epoch > state.epoch) {
        throw errors.STALE_EPOCH(
          `batch ${state.batch} was written by epoch ${current.epoch}; writer has epoch ${state.epoch}`,
          {
            details: { batch: state.batch, storedEpoch: current.epoch, epoch: state.epoch },
          },
        )
      }
      return { ok: false, current, revision: cur?.seq ?? 0 }
    }
  }

  /**
   * Write a job's final record unless one of its run exists (the first final record of a run
   * stands; a reopened record of the run is replaced). Resolves with the record that is stored.
   * BODY_TOO_LARGE (details.max) when it does not fit. `announce`: the first attempt is acknowledged
   * on a subject the APIs hear too, told just before it is sent (jobs/streams/io.ts).
   */
  async writeFinal(
    job: Job,
    signal?: AbortSignal,
    announce?: (ackSubject: string) => void,
  ): Promise<{ job: Job; created: boolean; seq: number }> {
    const { io, streams, subjects } = this.d
    const data = encode(job)
    const max = this.d.maxPayload() - 1024
    if (data.length > max)
      throw errors.BODY_TOO_LARGE(`final record of ${data.length} bytes exceeds the store limit of ${max} bytes`, {
        details: { id: job.id, bytes: data.length, max },
      })
    const run = job.run ?? 0
    for (let expect = 0, tries = 0; ; tries++) {
      try {
        const ack = await io.publish(streams.done, subjects.done(job.id), data, {
          expectLastSubjectSequence: expect,
          ...(signal ? { signal } : {}),
          ...(announce && tries === 0 ? { announce } : {}),
        })
        return { job, created: true, seq: ack.seq }
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause ?? err
        if (!isWrongLastSequence(cause) || tries > 3) throw err
        const msg = await io.last(streams.done, subjects.done(job.id), signal)
        if (!msg) continue // expired meanwhile: create it
        const cur = { record: decodeDone(msg.data, job.id), seq: msg.seq }
        if (cur.record.kind === 'final' && (cur.record.job.run ?? 0) >= run)
          return { job: cur.record.job, created: false, seq: cur.seq }
        if (cur.record.kind === 'garbage' || (cur.record.job.run ?? 0) > run)
          throw errors.STORE(`job ${job.id}: DONE holds a record this run cannot replace`, { cause: err })
        expect = cur.seq // this run's reopened record, or an older run's final record: replaced
      }
    }
  }

  /**
   * Write one group of final records of a batch (final-groups.ts) if the batch's last group is still
   * at DONE sequence `expect` (0: none). A lost race answers with the groups stored after `expect`
   * (garbage skipped with a warning) and the subject's last sequence. BODY_TOO_LARGE (details.max)
   * when the group does not fit in one message.
   */
  async writeFinalGroup(group: FinalGroup, expect: number, signal?: AbortSignal): Promise<GroupWrite> {
    const { io, streams, subjects } = this.d
    const subject = subjects.doneGroup(group.batch, group.part)
    const data = encode(compactGroup(group))
    const max = this.d.maxPayload() - 1024
    if (data.length > max)
      throw errors.BODY_TOO_LARGE(`group of ${data.length} bytes exceeds the store limit of ${max} bytes`, {
        details: { batch: group.batch, jobs: group.finals.length, bytes: data.length, max },
      })
    try {
      const ack = await io.publish(streams.done, subject, data, {
        expectLastSubjectSequence: expect,
        ...(signal ? { signal } : {}),
      })
      return { ok: true, seq: ack.seq }
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err
      if (!isWrongLastSequence(cause)) throw err
    }
    const after: StoredGroup[] = []
    let last = expect
    for (
      let m = await io.next(streams.done, subject, expect + 1, signal);
      m;
      m = await io.next(streams.done, subject, m.seq + 1, signal)
    ) {
      last = m.seq
      const found = decodeGroup(m.data, group.batch, group.part)
      if (found) after.push({ seq: m.seq, group: found })
      else this.d.log.warn({ stream: streams.done, seq: m.seq, subject }, 'skipping garbage in the job store')
    }
    return { ok: false, after, last }
  }

  readDone(id: string, signal?: AbortSignal): Promise<StoredDone | null> {
    return this.reopens.readDone(id, signal)
  }

  writeReopened(rec: ReopenedRecord, expect: number, signal?: AbortSignal): Promise<number | null> {
    return this.reopens.writeReopened(rec, expect, signal)
  }

  submitReopened(sub: SubmitRecord, signal?: AbortSignal): Promise<boolean> {
    return this.reopens.submit(sub, signal)
  }

  /** Queue a job run's completion callback (jobs/callbacks/store.ts), once per job and run. */
  async enqueueCallback(task: { jobId: string; run: number }, signal?: AbortSignal): Promise<void> {
    const { io, subjects } = this.d
    const stream = callbackStreams(subjects.cluster).tasks
    const data = encode({ v: 1, jobId: task.jobId, run: task.run } satisfies CallbackTask)
    await io.publish(stream, callbackTaskSubject(subjects.cluster, task.jobId), data, {
      msgId: deliveryId(task.jobId, task.run),
      ...(signal ? { signal } : {}),
    })
  }

  /** The checkpoint (null with revision 0 when none was written yet; garbage reads as none, with its revision). */
  async readCheckpoint(signal?: AbortSignal): Promise<StoredCheckpoint> {
    const { io, streams, subjects } = this.d
    const msg = await io.last(streams.state, subjects.checkpoint, signal)
    if (!msg) return { checkpoint: null, revision: 0 }
    const checkpoint = decodeCheckpoint(msg.data)
    if (!checkpoint) this.d.log.warn({ seq: msg.seq }, 'skipping a garbage DONE checkpoint')
    return { checkpoint, revision: msg.seq }
  }

  /**
   * Write the checkpoint if the stored one is still at `expect`; otherwise answers `ok: false` with
   * the stored one (the caller decides: an older epoch's is overwritten, a newer epoch's fences it).
   */
  async writeCheckpoint(
    cp: DoneCheckpoint,
    expect: number,
    signal?: AbortSignal,
  ): Promise<StoredCheckpoint & { ok: boolean }> {
    const { io, streams, subjects } = this.d
    try {
      const ack = await io.publish(streams.state, subjects.checkpoint, encode(cp), {
        expectLastSubjectSequence: expect,
        ...(signal ? { signal } : {}),
      })
      return { ok: true, checkpoint: cp, revision: ack.seq }
    } catch (err) {
      const cause = (err as { cause?: unknown }).cause ?? err
      if (!isWrongLastSequence(cause)) throw err
      return { ok: false, ...(await this.readCheckpoint(signal)) }
    }
  }

  /**
   * The final records after DONE sequence `after`, up to the stream's end when the read started
   * (garbage skipped with a warning); `lastSeq`: that end. Rejects when `signal` aborts.
   */
  finalsAfter(after: number, signal?: AbortSignal): Promise<DoneTail> {
    return readDoneTail(this.d, after, signal)
  }

  /** The listing index entries stored since `sinceMs` (index-tail.ts). */
  indexedSince(sinceMs: number, signal?: AbortSignal): Promise<Set<string>> {
    return readIndexedSince(this.d, sinceMs, signal)
  }

  /** Keep history entries of attempts that did not end job `id` (all written when this resolves). */
  async logAttempts(id: string, entries: readonly AttemptEntry[], signal?: AbortSignal): Promise<void> {
    const { io, streams, subjects } = this.d
    await Promise.all(
      entries.map((e) => io.publish(streams.attempts, subjects.attempts(id), encode(e), signal ? { signal } : {})),
    )
  }

  /** The history entries kept for job `id`, oldest first (garbage skipped with a warning). */
  async loggedAttempts(id: string, signal?: AbortSignal): Promise<AttemptEntry[]> {
    const { io, streams, subjects } = this.d
    const out: AttemptEntry[] = []
    for (let seq = 1, reads = 0; reads <= MAX_HISTORY_ENTRIES; reads++) {
      const m = await io.next(streams.attempts, subjects.attempts(id), seq, signal)
      if (!m) break
      seq = m.seq + 1
      const entry = attemptEntryFrom(parseJson(m.data))
      if (entry) out.push(entry)
      else this.d.log.warn({ stream: streams.attempts, seq: m.seq }, 'skipping garbage in the job store')
    }
    return out
  }

  /** Append finished job ids to the listing index, one message per state and function. */
  async index(entries: ReadonlyArray<IndexedJob>): Promise<void> {
    const groups = new Map<string, string[]>()
    for (const e of entries) {
      const subject = this.d.subjects.index(e.state, e.fn)
      let ids = groups.get(subject)
      if (!ids) groups.set(subject, (ids = []))
      ids.push(indexEntry(e.id, e.run))
    }
    await Promise.all(
      [...groups].map(([subject, ids]) => this.d.io.publish(this.d.streams.index, subject, encode({ v: 1, ids }))),
    )
  }

  /**
   * Every job of the batch is final and durable: remove its submit message (`submitSeq`; 0: already
   * gone), then its state record (at `stateRevision` when known; 0: none was written). With
   * `tombstone`, the state record is replaced by a tombstone of that epoch instead (BatchState.closed):
   * an older epoch's held first write, which expects no record, is then refused rather than stored.
   * Resolves with the tombstone's sequence (0: none). Idempotent.
   */
  async closeBatch(
    batch: string,
    submitSeq: number,
    stateRevision: number,
    signal?: AbortSignal,
    tombstone?: { epoch: number; size: number },
  ): Promise<number> {
    const { io, streams } = this.d
    if (submitSeq > 0) await io.delete(streams.submit, submitSeq, signal)
    if (!tombstone) {
      if (stateRevision > 0) await io.delete(streams.state, stateRevision, signal)
      return 0
    }
    const record = tombstoneState(batch, tombstone.size, tombstone.epoch)
    for (let expect = stateRevision; ;) {
      const res = await this.writeState(record, expect, signal)
      if (res.ok) return res.revision
      // An older epoch's write landed since (a newer one throws STALE_EPOCH): the tombstone replaces it.
      if (res.current?.closed === true && res.current.epoch === tombstone.epoch) return res.revision
      expect = res.revision
    }
  }

  /** Remove a tombstone (`closeBatch`) once no older epoch's write can be in flight; idempotent. */
  removeTombstone(seq: number, signal?: AbortSignal): Promise<void> {
    return this.d.io.delete(this.d.streams.state, seq, signal)
  }

  /** The submitted record of one job (its payload, when the boss did not keep it). */
  async readSubmitted(id: string): Promise<{ submit: SubmitRecord; index: number } | null> {
    const where = parseJobId(id)
    if (!where) return null
    const msg = await this.d.io.last(this.d.streams.submit, this.d.subjects.submit(where.batch))
    const submit = msg ? decodeSubmit(msg.data, where.batch) : null
    return submit ? { submit, index: where.index } : null
  }
}
