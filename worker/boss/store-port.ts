/**
 * What the boss needs from the durable job store: implemented by jobs/streams/boss-store.ts, faked
 * in test/helpers/boss-fakes.ts. Open batches in; fenced batch state records, final records (once, on
 * their own or in groups of a batch),
 * listing index entries and batch removals out. Of the finished jobs only the final records after
 * the last checkpoint are read back (a predecessor's last moments).
 */
import type { AttemptEntry } from '../../jobs/attempts.js'
import type { Job } from '../../jobs/model.js'
import type { GroupWrite, IndexedJob } from '../../jobs/streams/boss-store.js'
import type { FinalGroup } from '../../jobs/streams/final-groups.js'
import type { DoneTail } from '../../jobs/streams/done-tail.js'
import type { StoredDone } from '../../jobs/streams/reopen-writes.js'
import type { ReopenedRecord } from '../../jobs/streams/reopened.js'
import type { ClosedBatchState } from '../../jobs/streams/batch-watch.js'
import type {
  BatchState,
  DoneCheckpoint,
  OpenBatch,
  StateWrite,
  StoredCheckpoint,
  SubmitRecord,
} from '../../jobs/streams/index.js'

export type { ClosedBatchState, DoneCheckpoint, OpenBatch, StateWrite, StoredCheckpoint }

export interface BossStore {
  /**
   * Every open batch (with its state), then `onInitialDone()`, then each later batch; the state
   * records found without an open batch (tombstones, half-finished closes) go to `onClosed` before
   * `onInitialDone()`. Returns a stop function.
   */
  watchBatches(
    onBatch: (b: OpenBatch) => void,
    onInitialDone: () => void,
    onClosed: (c: ClosedBatchState) => void,
  ): () => void
  /** One open batch read directly (null: closed or never stored). */
  readBatch(batch: string): Promise<OpenBatch | null>
  /**
   * Write a batch's state record if the stored one is still at revision `expect` (0: none).
   * STALE_EPOCH when the stored record carries a newer epoch; a lost race answers with the current record.
   */
  writeState(state: BatchState, expect: number, signal?: AbortSignal): Promise<StateWrite>
  /**
   * Write a job's final record unless one exists; resolves with the one that stands and its DONE
   * sequence (BODY_TOO_LARGE: details.max). `announce` is told the subject on which the first
   * attempt is acknowledged, which the APIs hear too, just before that attempt is sent.
   */
  writeFinal(
    job: Job,
    signal?: AbortSignal,
    announce?: (ackSubject: string) => void,
  ): Promise<{ job: Job; created: boolean; seq: number }>
  /**
   * Write one group of final records of a batch if its last group is still at DONE sequence `expect`
   * (0: none); a lost race answers with the groups stored since and the chain's last sequence
   * (worker/boss/final-groups.ts). BODY_TOO_LARGE when the group does not fit in one message.
   */
  writeFinalGroup(group: FinalGroup, expect: number, signal?: AbortSignal): Promise<GroupWrite>
  /**
   * Queue the completion callback of run `run` of a job with a callbackUrl (jobs/callbacks/store.ts);
   * called before its final record is written, deduplicated per job and run.
   */
  enqueueCallback(task: { jobId: string; run: number }, signal?: AbortSignal): Promise<void>
  /** How far DONE is settled (null, revision 0: never recorded). */
  readCheckpoint(signal?: AbortSignal): Promise<StoredCheckpoint>
  /** Record how far DONE is settled if the stored one is still at `expect` (else `ok: false`, the stored one). */
  writeCheckpoint(cp: DoneCheckpoint, expect: number, signal?: AbortSignal): Promise<StoredCheckpoint & { ok: boolean }>
  /** The final and reopened records after DONE sequence `after` (to the end when the read began: `lastSeq`). */
  finalsAfter(after: number, signal?: AbortSignal): Promise<DoneTail>
  /** What DONE holds for job `id` (its final or reopened record) and at which sequence; null: nothing. */
  readDone(id: string, signal?: AbortSignal): Promise<StoredDone | null>
  /** Replace DONE's record of a job at sequence `expect` by a reopened record; null when it changed. */
  writeReopened(rec: ReopenedRecord, expect: number, signal?: AbortSignal): Promise<number | null>
  /** Submit the batch of reopened runs; false when it exists already. */
  submitReopened(sub: SubmitRecord, signal?: AbortSignal): Promise<boolean>
  /** Keep history entries of attempts that did not end job `id`. */
  logAttempts(id: string, entries: readonly AttemptEntry[], signal?: AbortSignal): Promise<void>
  /** The history entries kept for job `id`, oldest first. */
  loggedAttempts(id: string, signal?: AbortSignal): Promise<AttemptEntry[]>
  /** Append finished ids to the listing index. */
  index(entries: ReadonlyArray<IndexedJob>): Promise<void>
  /** The listing index entries (`<id>` or `<id>@<run>`) stored at or after `sinceMs` (epoch ms). */
  indexedSince(sinceMs: number, signal?: AbortSignal): Promise<Set<string>>
  /**
   * Remove a batch whose jobs are all final: its submit message (0: gone already), then its state
   * record (at `stateRevision`; 0: none) — replaced by a tombstone of `tombstone.epoch` when given
   * (worker/boss/tombstones.ts). Resolves with the tombstone's sequence (0: none). Idempotent.
   */
  closeBatch(
    batch: string,
    submitSeq: number,
    stateRevision: number,
    signal?: AbortSignal,
    tombstone?: { epoch: number; size: number },
  ): Promise<number>
  /** Remove a tombstone `closeBatch` left; idempotent. */
  removeTombstone(seq: number, signal?: AbortSignal): Promise<void>
  /** A job's submission (its payload, when the boss did not keep it). */
  readSubmitted(id: string): Promise<{ submit: SubmitRecord; index: number } | null>
}
