/**
 * What a worker holds of each job it took from the boss, from the dispatch until the boss has its
 * result: running, or dispatched ahead and waiting for a slot (start-gate.ts). One module so the
 * agent (worker-agent.ts) reads as dispatch, inventory and results only.
 */
import { errors } from '../../runner/index.js'
import { withFields, type Job } from '../../jobs/model.js'
import type { AttemptOutcome, DispatchedJob, RunningAttempt } from '../../jobs/protocol.js'
import type { AbortReason } from './executor-port.js'
import type { LiveAttempt } from './live-recorder.js'

export interface RunningJob extends RunningAttempt {
  fn: string
  /** The job's run (0 until it is retried after it ended). */
  run: number
  /** Date.now() at start (run time for metrics). */
  startedMs: number
  abort: (reason: AbortReason) => void
  done: Promise<void>
  handBack: boolean
  /** Dispatched ahead, waiting for a slot (not started). */
  waiting: boolean
  /** ctx.progress / ctx.log kept in the LIVE stream (absent: not kept). */
  live: LiveAttempt | undefined
  /** The record its success is written from by this worker (the dispatch's `final`, payload in place). */
  final: Job | undefined
}

/** A dispatched job's entry, waiting for a slot (`startedAt` is set again when it takes one). */
export function runningJob(job: DispatchedJob, epoch: number, live: LiveAttempt | undefined): RunningJob {
  return {
    jobId: job.id,
    fn: job.function,
    run: job.run ?? 0,
    attempt: job.attempts,
    epoch,
    startedAt: new Date().toISOString(),
    startedMs: 0,
    abort: () => undefined,
    handBack: false,
    waiting: true,
    done: Promise.resolve(),
    live,
    final: job.final && !job.payloadRef ? withFields(job.final, { payload: job.payload }) : undefined,
  }
}

/** The outcome of an attempt withdrawn before it took a slot (reported as handed back when the worker gave it back). */
export function notStarted(entry: RunningJob, reason: AbortReason): AttemptOutcome {
  entry.startedMs = Date.now()
  return {
    ok: false,
    error: { message: `aborted (${reason}) before it started`, code: errors.FUNCTION_CANCELLED.code },
  }
}
