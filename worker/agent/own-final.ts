/**
 * A worker writes the final record of a successful attempt itself when the boss's dispatch let it
 * (`final` in jobs/dispatch-message.ts: first attempts of jobs someone waits for). Its `?wait`
 * caller then hears JetStream's acknowledgement of that write without the result's trip to the boss
 * and the boss's write after it (docs/design-worker-outcomes.md). The record is built with the
 * boss's own rule (`afterAttempt`) and written once, by compare-and-set: when another final of the
 * run already stands (the boss cancelled the job meanwhile, or a requeued attempt finished first),
 * or the write fails, the result goes to the boss as any other and the boss decides.
 */
import type { Logger } from '../../runner/index.js'
import { withFields, type Job } from '../../jobs/model.js'
import type { AttemptResult } from '../../jobs/protocol.js'
import { afterAttempt } from '../boss/transitions.js'

/**
 * Store a final record unless one of its run stands: resolves with its DONE sequence when this write
 * created it, undefined when another record stands (the store's `writeFinal`, announced to the APIs).
 */
export type FinalWriter = (job: Job) => Promise<number | undefined>

/** The final record of a successful attempt as the boss would write it, with the dispatch's epoch. */
export function ownFinal(basis: Job, r: AttemptResult): Job {
  return withFields(afterAttempt(basis, r, new Date(r.finishedAt)), { epoch: r.epoch })
}

/**
 * Write the final of a successful attempt `r` of a job dispatched with `basis` (its payload in place)
 * and note it in the result (`stored`, the record without its payload: the boss has it). A result
 * that is not a success, or a write that did not create the record, leaves the result as it was.
 */
export async function writeOwnFinal(r: AttemptResult, basis: Job, write: FinalWriter, log: Logger): Promise<void> {
  if (!r.outcome.ok) return
  const final = ownFinal(basis, r)
  try {
    const seq = await write(final)
    if (seq !== undefined) r.stored = { seq, job: withFields(final, { payload: null }) }
  } catch (err) {
    log.warn({ err, jobId: r.jobId }, 'final record not written by the worker; the boss writes it')
  }
}
