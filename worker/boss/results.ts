/**
 * Finished attempts reported by workers. A result is acknowledged — and the worker then forgets it —
 * only once the job's record is durable with it, or once it is known not to apply (the job is final,
 * runs elsewhere, or no longer exists). While a new boss is still reading the store, a result for a
 * record it has not read yet waits for that record; if it does not arrive in time the result is not
 * acknowledged and the worker sends it again. Never "acked" on a partial view, nor while the job's
 * final record is still being written. A result whose final record its worker stored already
 * (`stored`) is recorded without a write: the boss does the bookkeeping.
 */
import { withFields } from '../../jobs/model.js'
import type { AttemptResult } from '../../jobs/protocol.js'
import type { Arrivals } from './arrivals.js'
import type { TermContext } from './term-context.js'
import { afterAttempt, resultApplies } from './transitions.js'

/** How long a result waits for its record during a takeover before it is left unacknowledged. */
export const RESULT_HOLD_MS = 3000

export class Results {
  constructor(
    private readonly ctx: TermContext,
    private readonly arrivals: Arrivals,
  ) {}

  /** Apply one finished attempt; resolves true when the worker may forget it. */
  async apply(r: AttemptResult): Promise<boolean> {
    const { ctx } = this
    if (!ctx.acting() && ctx.state() !== 'inventory') return false
    if (ctx.state() !== 'active' || !ctx.table.get(r.jobId)) {
      await this.arrivals.wait(r.jobId, (id) => ctx.table.get(id) !== undefined, RESULT_HOLD_MS)
    }
    if (!ctx.acting()) return false
    if (!(r.outcome.ok === false && r.outcome.handedBack)) ctx.fleet.ran(r.worker, r.startedAt, r.finishedAt)
    const t = ctx.table.get(r.jobId)
    // Unknown once every record has been read: purged or never existed — nothing to record.
    if (!t) {
      if (this.arrivals.complete)
        ctx.log.info({ jobId: r.jobId, worker: r.worker }, 'result for an unknown job dropped')
      return this.arrivals.complete
    }
    const rule = resultApplies(t.job, r)
    if (rule === 'obsolete') {
      // Its worker stored a final of it: should the job be dispatched again, that final is read first.
      if (r.stored) t.checkDone = true
      // Final but not durable yet (this result sent again while its first delivery is being written,
      // or a decision of the boss): the worker forgets the result only once the record is stored.
      if (t.phase !== 'final') {
        const { state, worker, attempts } = t.job
        ctx.log.info(
          { jobId: r.jobId, worker: r.worker, attempt: r.attempt, record: { state, worker, attempts } },
          'obsolete result dropped (the record runs another attempt)',
        )
        return true
      }
      return ctx.table.persist(t).then(
        () => true,
        () => false,
      )
    }
    // A final its worker wrote (worker-finals.ts) is taken as stored, with the payload the boss keeps.
    const next = r.stored
      ? withFields(r.stored.job, { payload: t.job.payload })
      : afterAttempt(
          rule === 'late' ? withFields(t.job, { attempts: r.attempt, worker: r.worker }) : t.job,
          r,
          new Date(),
          { losses: t.losses },
        )
    if (r.stored) t.storedFinal = { seq: r.stored.seq, index: true }
    if (r.outcome.ok === false && r.outcome.handedBack) t.losses++
    try {
      await ctx.door.commit(t, next, 'await', { fromResult: true })
      return true
    } catch (err) {
      ctx.log.debug({ err, jobId: r.jobId }, 'result not recorded; the worker will send it again')
      return false
    }
  }
}
