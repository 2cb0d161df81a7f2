import { TOMBSTONE_TTL_MS } from './tombstones.js'

/** Tunables of the boss (from the worker's configuration, worker/config.ts; documented in README). */
export interface BossSettings {
  /** A dispatched job's `running` state is written only if it still runs after this long (0: at once). */
  runningWriteDelayMs: number
  /** How often the boss asks workers holding its jobs what they run (lost dispatches, lost results). */
  reconcileIntervalMs: number
  /** Finished jobs are purged from the store this long after they finish. */
  retentionMs: number
  /** How long one inventory request may take before the worker counts as silent. */
  inventoryTimeoutMs: number
  /** How long a dispatch may take before it is left to reconcile. */
  dispatchTimeoutMs: number
  /** A registered worker answering "no responders" this long loses its jobs (they are requeued). */
  unreachableGraceMs: number
  /** How often the boss records how far DONE is settled (a new boss reads DONE after it). */
  checkpointIntervalMs: number
  /** How long a done mark waits for others of its batch before the batch's state record is written. */
  maskLingerMs: number
  /** How long a closed batch's tombstone stays before it is removed (worker/boss/tombstones.ts). */
  tombstoneTtlMs: number
}

export const DEFAULT_BOSS_SETTINGS: Readonly<BossSettings> = Object.freeze({
  runningWriteDelayMs: 50,
  reconcileIntervalMs: 2000,
  retentionMs: 24 * 3600 * 1000,
  inventoryTimeoutMs: 1000,
  dispatchTimeoutMs: 5000,
  unreachableGraceMs: 10_000,
  checkpointIntervalMs: 1000,
  maskLingerMs: 50,
  tombstoneTtlMs: TOMBSTONE_TTL_MS,
})
