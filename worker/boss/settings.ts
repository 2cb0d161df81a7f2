/** Tunables of the boss (from worker config; defaults documented in README). */
export interface BossSettings {
  /** A dispatched job's `running` state is written only if it still runs after this long (0: at once). */
  runningWriteDelayMs: number
  /** How often the boss asks workers holding its jobs what they run (lost dispatches, lost results). */
  reconcileIntervalMs: number
  /** Finished jobs are purged from the store this long after they finish. */
  retentionMs: number
  inventoryTimeoutMs: number
  dispatchTimeoutMs: number
}

export const DEFAULT_BOSS_SETTINGS: BossSettings = {
  runningWriteDelayMs: 50,
  reconcileIntervalMs: 2000,
  retentionMs: 24 * 3600 * 1000,
  inventoryTimeoutMs: 1000,
  dispatchTimeoutMs: 5000,
}
