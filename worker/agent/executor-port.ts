/**
 * What the worker agent needs from the function executor (a narrow interface; worker/executor is the
 * real one, tests pass fakes), and how an attempt's outcome is counted in the metrics. Kept apart
 * from worker-agent.ts so the agent reads as dispatch, inventory and results only.
 */
import { type AttemptState, errors } from '../../runner/index.js'
import type { JobError } from '../../jobs/model.js'
import type { AttemptOutcome } from '../../jobs/protocol.js'
import type { LiveChannel } from '../executor/outcomes.js'

export type AbortReason = 'cancel' | 'timeout' | 'shutdown'

export interface Executor {
  readonly capacity: number
  readonly functions: readonly string[]
  run(req: {
    jobId: string
    attempt: number
    fn: string
    payload: unknown
    timeoutMs: number
    /** Where ctx.progress and ctx.log go to be kept (absent: not kept). */
    live?: LiveChannel | undefined
  }): {
    promise: Promise<{ ok: true; result: unknown } | { ok: false; error: JobError }>
    abort: (reason: AbortReason) => void
  }
}

/** How an attempt ended, as the `state` label of bosun_jobs_finished_total. */
export function attemptState(outcome: AttemptOutcome): AttemptState {
  if (outcome.ok) return 'succeeded'
  if (outcome.handedBack) return 'handed_back'
  if (outcome.error.code === errors.FUNCTION_TIMEOUT.code) return 'timeout'
  if (outcome.error.code === errors.FUNCTION_CANCELLED.code) return 'cancelled'
  return 'failed'
}
