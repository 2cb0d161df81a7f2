/**
 * A BossStore that counts the job store's stale-epoch refusals of the boss's writes for metrics
 * (`bosun_fenced_writes_total{target="store"}`): a batch state write refused with STALE_EPOCH, or a
 * DONE checkpoint write lost to a newer epoch's. Everything else passes through unchanged; the term
 * still decides what a refusal means. Used only when metrics are on (worker/process.ts).
 */
import { type AgentMetrics, errors, isBosunError } from '../../runner/index.js'
import type { BossStore } from './store-port.js'

export function countFencedWrites(store: BossStore, metrics: Pick<AgentMetrics, 'fencedWrite'>): BossStore {
  return {
    watchBatches: (onBatch, onInitialDone, onClosed) => store.watchBatches(onBatch, onInitialDone, onClosed),
    readBatch: (batch) => store.readBatch(batch),
    writeState: (state, expect, signal) =>
      store.writeState(state, expect, signal).catch((err: unknown) => {
        if (isBosunError(err, errors.STALE_EPOCH)) metrics.fencedWrite('store')
        throw err
      }),
    writeFinal: (job, signal, announce) => store.writeFinal(job, signal, announce),
    writeFinalGroup: (group, expect, signal) => store.writeFinalGroup(group, expect, signal),
    enqueueCallback: (task, signal) => store.enqueueCallback(task, signal),
    readCheckpoint: (signal) => store.readCheckpoint(signal),
    writeCheckpoint: async (cp, expect, signal) => {
      const res = await store.writeCheckpoint(cp, expect, signal)
      if (!res.ok && (res.checkpoint?.epoch ?? 0) > cp.epoch) metrics.fencedWrite('store')
      return res
    },
    finalsAfter: (after, signal) => store.finalsAfter(after, signal),
    readDone: (id, signal) => store.readDone(id, signal),
    writeReopened: (rec, expect, signal) => store.writeReopened(rec, expect, signal),
    submitReopened: (sub, signal) => store.submitReopened(sub, signal),
    logAttempts: (id, entries, signal) => store.logAttempts(id, entries, signal),
    loggedAttempts: (id, signal) => store.loggedAttempts(id, signal),
    index: (entries) => store.index(entries),
    indexedSince: (sinceMs, signal) => store.indexedSince(sinceMs, signal),
    closeBatch: (batch, submitSeq, stateRevision, signal, tombstone) =>
      store.closeBatch(batch, submitSeq, stateRevision, signal, tombstone),
    removeTombstone: (seq, signal) => store.removeTombstone(seq, signal),
    readSubmitted: (id) => store.readSubmitted(id),
  }
}
