/**
 * Retention of finished jobs: each final record is removed from the store (and the boss's table)
 * JOB_RETENTION_MS after it finished, by a sweep on a timer.
 */
import type { Tracked } from './job-table.js'
import type { TermContext } from './term-context.js'

export class Retention {
  /** Finished jobs in the order they were indexed (sorted before each sweep). */
  private readonly expiry: { id: string; at: number }[] = []
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly ctx: TermContext) {}

  /** A job is final (read as such, or its final record is durable). */
  index(t: Tracked): void {
    const at = t.job.finishedAt ? Date.parse(t.job.finishedAt) : Date.now()
    this.expiry.push({ id: t.job.id, at: Number.isFinite(at) ? at : Date.now() })
  }

  start(): void {
    const retention = this.ctx.deps.settings.retentionMs
    this.timer = setInterval(() => this.sweep(), Math.min(60_000, Math.max(1000, retention / 10)))
    this.timer.unref()
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer)
  }

  private sweep(): void {
    const { ctx } = this
    if (!ctx.acting()) return
    const cutoff = Date.now() - ctx.deps.settings.retentionMs
    this.expiry.sort((a, b) => a.at - b.at)
    while (this.expiry.length > 0 && this.expiry[0]!.at <= cutoff) {
      const { id } = this.expiry.shift()!
      const t = ctx.table.get(id)
      if (!t || t.phase !== 'final') continue
      ctx.table.delete(id)
      ctx.deps.store.purge(id).catch((err: unknown) => ctx.log.warn({ err, jobId: id }, 'purge failed'))
    }
  }
}
