/**
 * Leadership metrics, fed by the API from the cluster events (runner/events): one count per new
 * boss term by how the previous term ended (`crashed`, `sigterm`, `fenced`, …: the `after` of
 * GET /cluster/leadership), and the term's failover gap. Every API process counts the same terms:
 * aggregate with max(), not sum().
 */
import { Counter, Histogram, type Registry } from 'prom-client'
import { BoundedLabel } from './bounded-label.js'
import { BUCKETS } from './process-metrics.js'

/** Distinct `reason` values of bosun_leader_changes_total; more fold into `other`. */
const MAX_REASONS = 16

export class LeadershipMetrics {
  private readonly changes: Counter<'reason'>
  private readonly gap: Histogram
  private readonly reasons = new BoundedLabel({ max: MAX_REASONS })
  private newestEpoch = 0

  constructor(registry: Registry) {
    const registers = [registry]
    this.changes = new Counter({
      name: 'bosun_leader_changes_total',
      help: 'New boss terms (epochs) seen after this process started, by how the previous term ended',
      labelNames: ['reason'],
      registers,
    })
    this.gap = new Histogram({
      name: 'bosun_failover_gap_seconds',
      help: 'Time without a dispatching boss per leadership change (gapBeforeMs of GET /cluster/leadership)',
      buckets: BUCKETS.failoverGap,
      registers,
    })
  }

  /** The term current when this process started: not a change it saw. */
  termSeen(epoch: number): void {
    if (epoch > this.newestEpoch) this.newestEpoch = epoch
  }

  /**
   * A new term started dispatching: counted once per epoch (seen twice, or an older one seen late,
   * it is not counted again), with its failover gap when known.
   */
  termStarted(epoch: number, after: string, gapSeconds: number | undefined): void {
    if (epoch <= this.newestEpoch) return
    this.newestEpoch = epoch
    this.changes.labels(this.reasons.value(after)).inc()
    if (gapSeconds !== undefined && Number.isFinite(gapSeconds) && gapSeconds >= 0) this.gap.observe(gapSeconds)
  }
}
