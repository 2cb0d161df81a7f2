/**
 * Cancel requests (DELETE /jobs/:id through the API). The request is durable before it is answered:
 * a queued job ends `cancelled` at once; a running one is marked `cancelRequested` (so no later
 * requeue can run it again — see transitions.ts) and its worker is told to abort. A job this boss
 * has not read yet (it is still taking over, or the job was stored an instant ago) is cancelled in
 * the store directly and then taken into the table: an acknowledged job is never "unknown" to cancel.
 */
import { isFinal, type Job } from '../../jobs/model.js'
import { MSG } from '../../jobs/protocol.js'
import type { Arrivals } from './arrivals.js'
import type { Tracked } from './job-table.js'
import type { TermContext } from './term-context.js'
import { cancelRequested } from './transitions.js'

/** How long a cancel waits for the inventory (classification) before it goes on regardless. */
const CANCEL_HOLD_MS = 2000

export class Cancels {
  constructor(
    private readonly ctx: TermContext,
    private readonly arrivals: Arrivals,
    /** Take a record read from the store into the table (and classify it), as the watch would. */
    private readonly ingest: (job: Job, revision: number) => Tracked,
  ) {}

  /** Cancel `id`; resolves with the job after the durable change (null: no such job). */
  async cancel(id: string): Promise<Job | null> {
    const { ctx } = this
    // Once classification has started, a record not in the table is taken from the store directly.
    await this.arrivals.wait(id, () => true, CANCEL_HOLD_MS)
    if (!ctx.acting()) throw new Error('the boss term ended')
    let t = ctx.table.get(id)
    if (!t) {
      const written = await ctx.deps.store.mutate(id, ctx.epoch, (cur) =>
        isFinal(cur.state) ? null : cancelRequested(cur, new Date()),
      )
      if (written === null) return null
      t = this.ingest(written.job, written.revision)
    } else if (t.phase !== 'final' && !t.job.cancelRequested) {
      await ctx.door.commit(t, cancelRequested(t.job, new Date()), 'await')
    }
    if (t.phase === 'running' && t.job.worker !== undefined) {
      const body = { epoch: ctx.epoch, jobId: id }
      ctx.deps.transport.send(ctx.deps.addressOf(t.job.worker), MSG.abort, body, { epoch: ctx.epoch })
    }
    return t.job
  }
}
