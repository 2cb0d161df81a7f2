/**
 * Feeds the API's leadership metrics (bosun_leader_changes_total{reason}, bosun_failover_gap_seconds)
 * from the live cluster events: at each `boss.active` the terms are rebuilt from the boss events
 * (GET /cluster/leadership's view) and the new term is counted with how its predecessor ended and
 * the gap before it. Reading the boss events costs a scan of a few events per leadership change.
 */
import type { Logger } from '../runner/logger.js'
import type { LeadershipMetrics } from '../runner/index.js'
import type { ClusterEventsView } from './cluster-events.js'

/** Start following; `currentEpoch` is the term in office now (not a change this process saw). */
export function watchLeadership(
  events: ClusterEventsView,
  metrics: LeadershipMetrics,
  currentEpoch: number,
  log: Logger,
): { stop(): Promise<void> } {
  metrics.termSeen(currentEpoch)
  return events.follow(undefined, (e) => {
    if (e.type !== 'boss.active' || e.epoch === undefined) return
    const epoch = e.epoch
    events
      .leadership()
      .then((terms) => {
        const term = terms.find((x) => x.epoch === epoch)
        const gap = term?.gapBeforeMs
        metrics.termStarted(epoch, term?.after ?? 'unknown', gap === undefined ? undefined : gap / 1000)
      })
      .catch((err: unknown) => log.warn({ err }, 'leadership metrics: reading the terms failed'))
  })
}
