/**
 * A new boss's read of the open batches (BossJobStore.watchBatches): the STATE stream whole first
 * (one record per open batch, and tombstones of closed ones), then SUBMIT from its start — every
 * open batch arrives with its state, then every newly submitted batch as it is stored. The state
 * records left without an open batch are reported apart: tombstones (removed once old enough) and
 * the records of a close that stopped half-way (the boss closes them). Garbage is skipped with a warning.
 */
import type { BossStoreDeps } from './boss-store.js'
import { StreamFollower, type PulledMessage } from './follow.js'
import { decodeState, decodeSubmit, type BatchState, type SubmitRecord } from './records.js'

/** An open batch as the boss reads it. */
export interface OpenBatch {
  batch: string
  /** Sequence of its submit message (deleted when the batch closes). */
  submitSeq: number
  submit: SubmitRecord
  state: BatchState | null
  /** Sequence of its state record (0: none yet). */
  stateRevision: number
  /** Size of its submit message in bytes (large ones carry payloads the boss does not keep). */
  bytes: number
  /**
   * Open when the reader began (the takeover's initial load, or a direct read): a boss of an older
   * epoch may have seen it, so its close leaves a tombstone (worker/boss/tombstones.ts).
   */
  adopted: boolean
}

/** A state record the takeover read found without an open batch: a tombstone, or a close that stopped half-way. */
export interface ClosedBatchState {
  batch: string
  /** Its sequence in STATE. */
  seq: number
  /** When it was stored (epoch ms). */
  storedAtMs: number
  /** The batch's number of jobs. */
  size: number
  /** A tombstone (closeBatch): removed once old enough; otherwise the boss must close it. */
  tombstone: boolean
}

/**
 * Every open batch (with its state), then `onInitialDone()`, then each batch submitted later; the
 * state records without an open batch go to `onClosed`.
 * Returns a stop function.
 */
export function watchOpenBatches(
  d: BossStoreDeps,
  onBatch: (b: OpenBatch) => void,
  onInitialDone: () => void,
  onClosed?: (c: ClosedBatchState) => void,
): () => void {
  const states = new Map<string, { state: BatchState; revision: number; storedAtMs: number }>()
  let submits: StreamFollower | undefined
  let stopped = false
  let initial = true
  const stateScan = new StreamFollower({
    js: d.js,
    jsm: d.jsm,
    stream: d.streams.state,
    filter: d.subjects.allStates,
    log: d.log,
    once: true,
    onMessage: (m) => {
      if (m.subject === d.subjects.checkpoint) return
      const batch = d.subjects.batchOf(m.subject)
      const state = batch ? decodeState(m.data, batch) : null
      if (batch && state) states.set(batch, { state, revision: m.seq, storedAtMs: m.storedAtMs })
      else garbage(d, d.streams.state, m)
    },
    onInitialDone: () => {
      if (stopped) return
      submits = new StreamFollower({
        js: d.js,
        jsm: d.jsm,
        stream: d.streams.submit,
        filter: d.subjects.allSubmits,
        log: d.log,
        onMessage: (m) => {
          const batch = d.subjects.batchOf(m.subject)
          const submit = batch ? decodeSubmit(m.data, batch) : null
          if (!batch || !submit) return garbage(d, d.streams.submit, m)
          const s = states.get(batch)
          states.delete(batch)
          onBatch({
            batch,
            submitSeq: m.seq,
            submit,
            state: s?.state ?? null,
            stateRevision: s?.revision ?? 0,
            bytes: m.data.length,
            adopted: initial,
          })
        },
        onInitialDone: () => {
          // State records left without a batch: tombstones, and the records of a close that stopped
          // half-way (its submit message removed), which the boss closes.
          for (const [batch, s] of states) {
            const tombstone = s.state.closed === true
            onClosed?.({ batch, seq: s.revision, storedAtMs: s.storedAtMs, size: s.state.size, tombstone })
          }
          states.clear()
          initial = false
          onInitialDone()
        },
      })
    },
  })
  return () => {
    stopped = true
    void stateScan.stop()
    void submits?.stop()
  }
}

function garbage(d: BossStoreDeps, stream: string, m: PulledMessage): void {
  d.log.warn({ stream, seq: m.seq, subject: m.subject, bytes: m.data.length }, 'skipping garbage in the job store')
}
