/**
 * Messages between the FunctionPool (main thread) and thread.mjs (one per worker thread), over the
 * thread's own parentPort: one control port per thread, no per-job channel. A thread may hold several
 * runs at once; `id` is the pool-wide run number, so late messages from a finished run are recognised.
 * Runs and aborts travel several to a message (`batch`), and so do the done messages (`dones`): a
 * message between threads costs a wake-up of the receiving thread, whatever it carries.
 * thread.mjs is plain JavaScript and mirrors these shapes.
 */
import type { JobError } from '../../jobs/model.js'

export type AbortReason = 'cancel' | 'timeout' | 'shutdown'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error'

/** Given once, as `workerData`, when a thread starts. */
export interface ThreadData {
  maxResultBytes: number
  /** ctx.log lines one run may send before the rest are dropped. */
  maxLogLines: number
  /**
   * ctx.log lines below this level are dropped in the thread: 'debug' when the main logger takes debug
   * lines, else 'info' (info and above are kept with the job whatever the log level).
   */
  minLogLevel: 'debug' | 'info'
  /** A call whose synchronous slice holds the thread longer than this is reported (`slow`). */
  maxSliceMs: number
  /** Error codes the thread puts on failures (from runner/errors.ts, the one registry). */
  codes: {
    load: string
    notSerializable: string
    tooLarge: string
    timeout: string
    cancelled: string
    closed: string
    badProgress: string
  }
}

/** main → thread: run a function. */
export interface RunMessage {
  t: 'run'
  id: number
  jobId: string
  attempt: number
  file: string
  payload: unknown
}

/** main → thread: abort the signal of run `id` (ignored when that run is over). */
export interface AbortMessage {
  t: 'abort'
  id: number
  reason: AbortReason
}

/** main → thread: import these function files and report what each declares. */
export interface DescribeMessage {
  t: 'describe'
  id: number
  files: string[]
}

/** main → thread: several run and abort messages, handled in order. */
export interface BatchMessage {
  t: 'batch'
  msgs: (RunMessage | AbortMessage)[]
}

export type ToThread = RunMessage | AbortMessage | DescribeMessage | BatchMessage

/** thread → main: run `id` is over; `json` is the result already serialised and size-checked. */
export type DoneMessage =
  | { t: 'done'; id: number; ok: true; json: string }
  | { t: 'done'; id: number; ok: false; error: JobError; stack?: string }

/** thread → main: the done messages of the runs that ended in one turn of the thread's loop. */
export interface DonesMessage {
  t: 'dones'
  list: DoneMessage[]
}

/** thread → main: a call of run `id` held the thread for `ms` without yielding. */
export interface SlowMessage {
  t: 'slow'
  id: number
  ms: number
}

/** thread → main: one ctx.log line of run `id`. */
export interface LogMessage {
  t: 'log'
  id: number
  jobId: string
  attempt: number
  /** Function name (file name without extension). */
  fn: string
  level: LogLevel
  msg: string
  fields?: Record<string, unknown>
}

/** thread → main: run `id` called ctx.progress with `value` (already checked in the thread). */
export interface ProgressMessage {
  t: 'progress'
  id: number
  value: unknown
}

/** thread → main: the thread has started (sent once, after any --import preloads ran). */
export interface ReadyMessage {
  t: 'ready'
}

/** thread → main: per file, whether the module declares `config.isolation === 'inline'` (and loaded). */
export interface DescribedMessage {
  t: 'described'
  id: number
  /** `limits`: the limits fields of the module's `config`, unparsed (jobs/limits.ts parses them). */
  configs: Record<string, { inline: boolean; limits?: unknown }>
}

export type FromThread =
  DoneMessage | DonesMessage | SlowMessage | LogMessage | ProgressMessage | ReadyMessage | DescribedMessage
