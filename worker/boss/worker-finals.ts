/**
 * Final records written by the workers that ran the jobs (docs/design-worker-outcomes.md). The boss
 * lets a worker write the success of a job's first attempt when someone waits for the job and the
 * boss would write that success exactly as the worker can (`finalBasis`): no callback to queue
 * first, no cancel asked, no history kept elsewhere, a payload the boss holds. The worker's write is
 * a compare-and-set on the job's DONE subject, so the first final of a run stands, whoever wrote it.
 *
 * A worker may write such a final that no boss hears of (it dies before its result arrives, or the
 * boss does), and DONE's checkpoint may pass it meanwhile. So before the boss runs such a job again —
 * a requeue after its worker was lost, or any waited job a new boss finds unfinished — it reads the
 * job's DONE record (`FinalCheck`): a final there is adopted, and the job is not run again because
 * the boss changed (README "Guarantees").
 */
import { retryDelay } from '../../runner/retry.js'
import { withFields, type Job } from '../../jobs/model.js'
import { unlisted } from './final-indexer.js'
import type { StoredDone } from '../../jobs/streams/reopen-writes.js'
import type { Tracked } from './job-table.js'
import type { TermContext } from './term-context.js'

/** The record a worker may write this dispatch's success from (payload left out), or undefined: the boss writes. */
export function finalBasis(t: Tracked): Job | undefined {
  const { job } = t
  if (!t.waited || t.payloadRef || job.run || job.callbackUrl !== undefined || job.cancelRequested) return undefined
  if (job.state !== 'running' || job.attempts !== 1 || (job.history?.length ?? 0) > 0 || 'logged' in job)
    return undefined
  return withFields(job, { payload: null })
}

/** The final record of run `run` that DONE holds (`readDone`'s answer), or undefined. */
export function finalOfRun(found: StoredDone | null, run: number | undefined): Job | undefined {
  const rec = found?.record
  return rec?.kind === 'final' && (rec.job.run ?? 0) === (run ?? 0) ? rec.job : undefined
}

/** Whether a worker may have written a final of this job that the boss has not heard of. */
export function mayHaveWorkerFinal(t: Tracked): boolean {
  return t.waited && !t.job.run && t.job.callbackUrl === undefined
}

export class FinalCheck {
  private failures = 0

  constructor(private readonly ctx: TermContext) {}

  /**
   * Read `t`'s DONE record before it is dispatched (it is out of the ready queue meanwhile): a final
   * of its run is adopted, anything else puts it back in the queue, to be dispatched.
   */
  async check(t: Tracked): Promise<void> {
    const { ctx } = this
    t.checkDone = false
    const id = t.job.id
    let adopted: { job: Job; seq: number; index: boolean } | undefined
    try {
      const found = await ctx.deps.store.readDone(id)
      const final = finalOfRun(found, t.job.run)
      if (found && final) {
        const at = Date.parse(final.finishedAt ?? '') || Date.now()
        const missing = await unlisted(ctx.deps.store, [{ job: final, at }])
        adopted = { job: final, seq: found.seq, index: missing.length > 0 }
      }
      this.failures = 0
    } catch (err) {
      if (!ctx.acting() || ctx.table.get(id) !== t || t.phase !== 'queued') return
      const delay = retryDelay(this.failures++)
      ctx.log.warn({ err, jobId: id, retryInMs: delay }, 'reading a final record before a dispatch failed; retrying')
      t.checkDone = true
      setTimeout(() => ctx.acting() && t.phase === 'queued' && ctx.door.ready(t), delay).unref()
      return
    }
    if (!ctx.acting() || ctx.table.get(id) !== t || t.phase !== 'queued') return
    if (!adopted) return ctx.door.ready(t)
    ctx.log.info({ jobId: id, seq: adopted.seq }, 'a final record its worker wrote stands: adopted, not run again')
    t.storedFinal = { seq: adopted.seq, index: adopted.index }
    const job = t.payloadRef ? withFields(adopted.job, { payload: null }) : adopted.job
    void ctx.door.commit(t, job, 'background')
  }
}
