/**
 * Cancel requests (DELETE /jobs/:id through the API). The request is durable before it is answered:
 * a queued job ends `cancelled` at once; a running one is marked `cancelRequested` (so no later
 * requeue can run it again — see transitions.ts) and its worker is told to abort — unless that
 * worker already wrote the job's final record (a waited job: worker-finals.ts), which is answered. A job this boss
 * has not read yet (it is still taking over, or the job was stored an instant ago) is cancelled in
 * the store directly and then taken into the table: an acknowledged job is never "unknown" to cancel.
 */
import { errors } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import { parseJobId, type OpenBatch } from '../../jobs/streams/index.js'
import { MSG } from '../../jobs/protocol.js'
import type { Arrivals } from './arrivals.js'
import type { Tracked } from './job-table.js'
import type { TermContext } from './term-context.js'
import { cancelRequested } from './transitions.js'
import { finalOfRun, mayHaveWorkerFinal } from './worker-finals.js'

/** How long a cancel waits for the inventory (classification) before it goes on regardless. */
const CANCEL_HOLD_MS = 2000

export class Cancels {
  constructor(
    private readonly ctx: TermContext,
    private readonly arrivals: Arrivals,
    /** Take an open batch read from the store into the table (and classify its jobs), as the watch would. */
    private readonly ingest: (b: OpenBatch) => void,
  ) {}

  /**
   * Cancel `id`; resolves with the job after the durable change, or null when it is not an
   * unfinished job of an open batch (the API then answers from the store: finished, or unknown).
   */
  async cancel(id: string): Promise<Job | null> {
    const { ctx } = this
    // Once classification has started, a job not in the table is looked up in the store directly.
    await this.arrivals.wait(id, () => true, CANCEL_HOLD_MS)
    if (!ctx.acting()) throw errors.NOT_LEADER('the boss term ended')
    let t = ctx.table.get(id)
    if (!t) {
      // Stored an instant ago (the watch has not delivered its batch yet), finished, or unknown.
      const where = parseJobId(id)
      const open = where ? await ctx.deps.store.readBatch(where.batch) : null
      if (open) this.ingest(open)
      t = ctx.table.get(id) ?? (await this.reopenedRun(id))
      if (!t) return null
    }
    const standing = await this.standingFinal(t)
    if (standing) return standing
    if (t.phase !== 'final' && !t.job.cancelRequested) {
      await ctx.door.commit(t, cancelRequested(t.job, new Date()), 'await')
    }
    if (t.phase === 'running' && t.job.worker !== undefined) {
      const body = { epoch: ctx.epoch, jobId: id }
      ctx.deps.transport.send(ctx.deps.addressOf(t.job.worker), MSG.abort, body, { epoch: ctx.epoch })
    }
    return t.job
  }

  /**
   * The final record the worker of a running waited job may have written before its result reached
   * this boss (worker-finals.ts): the API may have answered the client from it already, so the job is
   * finished and its cancel answers it unchanged. Undefined when there is none (or it cannot be read:
   * the cancel is then asked as for any running job, and the first final of the run stands anyway).
   */
  private async standingFinal(t: Tracked): Promise<Job | undefined> {
    if (t.phase !== 'running' || t.job.cancelRequested || !mayHaveWorkerFinal(t)) return undefined
    const found = await this.ctx.deps.store.readDone(t.job.id).catch(() => null)
    if (!this.ctx.acting()) throw errors.NOT_LEADER('the boss term ended')
    return finalOfRun(found, t.job.run)
  }

  /** A retried job's run lives in a batch of its own (jobs/streams/reopened.ts): read it too. */
  private async reopenedRun(id: string): Promise<Tracked | undefined> {
    const { store } = this.ctx.deps
    const done = await store.readDone(id)
    if (done?.record.kind !== 'reopened') return undefined
    const open = await store.readBatch(done.record.job.reopened.batch)
    if (open) this.ingest(open)
    return this.ctx.table.get(id)
  }
}
