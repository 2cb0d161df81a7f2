/**
 * What one run of a job function ends in. A run never rejects: every failure is an outcome with a
 * coded error ({ message, code?, name? }, the Job record's `error`).
 */
import { errors } from '../../runner/errors.js'
import type { JobError } from '../../jobs/model.js'
import type { AbortReason, DoneMessage } from './thread-protocol.js'

export type { AbortReason }

/** `handedBack`: the run was stopped for another job's fault; the boss runs it again without counting a failure. */
export type RunOutcome = { ok: true; result: unknown } | { ok: false; error: JobError; handedBack?: boolean }

/** A started run, on a thread (worker/executor/pool.ts) or inline (worker/executor/inline.ts). */
export interface RunHandle {
  /** Settles once, never rejects. */
  promise: Promise<RunOutcome>
  /** Abort the run: a queued run ends at once, a running one gets its signal aborted. Idempotent. */
  abort(reason: AbortReason): void
}

/**
 * Where a run's ctx.progress values and ctx.log lines go to be kept with the job (the worker agent's
 * LIVE record, worker/agent/live-recorder.ts). Progress values arrive already checked.
 */
export interface LiveChannel {
  progress(value: unknown): void
  log(level: string, msg: string, fields?: unknown): void
}

/** The outcome a thread's `done` message reports (its result is JSON the thread already size-checked). */
export function outcomeOfDone(msg: DoneMessage): RunOutcome {
  if (!msg.ok) return { ok: false, error: msg.error }
  try {
    return { ok: true, result: JSON.parse(msg.json) }
  } catch (err) {
    return failure(errors.RESULT_NOT_SERIALIZABLE.code, `job result could not be read back: ${(err as Error).message}`)
  }
}

/** Code of a run whose thread died under it (uncaught exception in stray callbacks, process.exit(), heap limit). */
export const FUNCTION_CRASHED_CODE = errors.FUNCTION_CRASHED.code

/** The codes thread.mjs puts on failures (passed to it as workerData). */
export const THREAD_CODES = Object.freeze({
  load: errors.FUNCTION_LOAD.code,
  notSerializable: errors.RESULT_NOT_SERIALIZABLE.code,
  tooLarge: errors.RESULT_TOO_LARGE.code,
  timeout: errors.FUNCTION_TIMEOUT.code,
  cancelled: errors.FUNCTION_CANCELLED.code,
  closed: errors.CLOSED.code,
  badProgress: errors.BAD_PROGRESS.code,
})

export function failure(code: string, message: string, name?: string): RunOutcome {
  return { ok: false, error: name === undefined ? { message, code } : { message, code, name } }
}

/**
 * The outcome of an aborted run, whatever the function did after its signal was aborted.
 * @param hard the function ignored the signal for the grace period and its thread was terminated.
 * @param started false when the run was still queued.
 */
export function abortOutcome(
  reason: AbortReason,
  opts: { timeoutMs?: number; hard?: boolean; started?: boolean } = {},
): RunOutcome {
  const hard = opts.hard ? '; the function ignored its abort signal, so its thread was stopped' : ''
  switch (reason) {
    case 'timeout':
      return failure(
        errors.FUNCTION_TIMEOUT.code,
        `job timed out after ${opts.timeoutMs ?? '?'} ms${hard}`,
        'TimeoutError',
      )
    case 'cancel':
      return failure(
        errors.FUNCTION_CANCELLED.code,
        `job was cancelled${opts.started === false ? ' before it started' : ''}${hard}`,
        'AbortError',
      )
    case 'shutdown':
      return failure(errors.CLOSED.code, `job was aborted: the worker is shutting down${hard}`, 'AbortError')
  }
}

/**
 * The outcome of a run that shared a thread which had to be stopped for another run: a function
 * that ignored its abort signal, or a crash no single run can be blamed for. Handed back, so the
 * boss runs the job again without counting a failure (and the pool no longer lets the functions
 * involved share a thread).
 */
export function interruptedOutcome(why: string): RunOutcome {
  return { ok: false, error: { message: `job was interrupted: ${why}`, code: FUNCTION_CRASHED_CODE }, handedBack: true }
}

/** The outcome of a run whose thread exited or crashed under it. */
export function crashOutcome(err: unknown, exitCode: number | undefined, heapMb: number | undefined): RunOutcome {
  const code = (err as { code?: unknown } | undefined)?.code
  if (code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return failure(
      FUNCTION_CRASHED_CODE,
      `job function ran out of memory (thread heap limit ${heapMb ?? 'default'} MiB)`,
      'RangeError',
    )
  }
  if (err instanceof Error || (typeof err === 'object' && err !== null && 'message' in err)) {
    const e = err as { message?: unknown; name?: unknown }
    return failure(
      FUNCTION_CRASHED_CODE,
      `job function crashed its thread: ${String(e.message)}`,
      typeof e.name === 'string' ? e.name : undefined,
    )
  }
  return failure(FUNCTION_CRASHED_CODE, `job function ended its thread (exit code ${exitCode ?? '?'})`)
}
