/**
 * One function thread of the pool (worker/executor/pool.ts): the Worker, its start-up promise and
 * the routing of what it sends back. Kept apart so the pool reads as scheduling only — which run goes
 * to which thread, aborts, replacement — while this file owns the thread's wiring and its log lines.
 */
import { Worker, type ResourceLimits } from 'node:worker_threads'
import type { Logger } from '../../runner/logger.js'
import { THREAD_ENTRY } from './paths.js'
import type {
  AbortMessage,
  DescribedMessage,
  DoneMessage,
  FromThread,
  LogMessage,
  ProgressMessage,
  RunMessage,
  SlowMessage,
  ThreadData,
} from './thread-protocol.js'

/** A thread and the runs it holds (`R` is the pool's run record), by run id. */
export interface ThreadSlot<R> {
  worker: Worker
  runs: Map<number, R>
  /** It holds a run of a function that may not share its thread (worker/executor/pool.ts). */
  solo: boolean
  /** Run and abort messages waiting for the pool's next flush (sent as one `batch` message). */
  outbox: (RunMessage | AbortMessage)[]
  online: boolean
  /** Stopped on purpose or dead: its events are ignored. */
  retired: boolean
  lastError: unknown
  /** Resolves once the thread said it is ready; rejects if it dies or fails first. */
  ready: Promise<void>
}

export interface ThreadSpawnOptions {
  threadData: ThreadData
  resourceLimits: ResourceLimits
  execArgv: string[] | undefined
}

/** What the pool hears from a thread. */
export interface ThreadListener<R> {
  online(slot: ThreadSlot<R>): void
  /** Runs that ended: one call per message from the thread, however many it carries. */
  done(slot: ThreadSlot<R>, msgs: readonly DoneMessage[]): void
  slow(slot: ThreadSlot<R>, msg: SlowMessage): void
  log(slot: ThreadSlot<R>, msg: LogMessage): void
  progress(slot: ThreadSlot<R>, msg: ProgressMessage): void
  described(msg: DescribedMessage): void
  exit(slot: ThreadSlot<R>, code: number): void
}

/** Start a function thread (unref'd: an idle thread never holds the process open). */
export function spawnThread<R>(opts: ThreadSpawnOptions, on: ThreadListener<R>): ThreadSlot<R> {
  const worker = new Worker(THREAD_ENTRY, {
    workerData: opts.threadData,
    resourceLimits: opts.resourceLimits,
    ...(opts.execArgv === undefined ? {} : { execArgv: opts.execArgv }),
  })
  worker.unref()
  let onReady!: () => void
  let onFail!: (err: Error) => void
  const slot: ThreadSlot<R> = {
    worker,
    runs: new Map(),
    solo: false,
    outbox: [],
    online: false,
    retired: false,
    lastError: undefined,
    ready: new Promise<void>((res, rej) => ((onReady = res), (onFail = rej))),
  }
  slot.ready.catch(() => {}) // observed through the pool's ready(); never an unhandled rejection
  worker.on('message', (msg: FromThread) => {
    if (msg.t === 'described') return on.described(msg)
    if (msg.t === 'log') return on.log(slot, msg)
    if (msg.t === 'progress') return on.progress(slot, msg)
    if (msg.t === 'dones') return on.done(slot, msg.list)
    if (msg.t === 'done') return on.done(slot, [msg])
    if (msg.t === 'slow') return on.slow(slot, msg)
    slot.online = true
    on.online(slot)
    onReady()
  })
  worker.on('error', (err) => {
    slot.lastError = err
    if (!slot.online) onFail(err)
  })
  worker.on('exit', (code) => {
    if (!slot.online) onFail(new Error(`function thread exited with code ${code} before it started`))
    on.exit(slot, code)
  })
  return slot
}

/** A ctx.log line from a thread, on the job-function logger (an unknown level is logged as info). */
export function logThreadLine(fnLog: Logger, msg: LogMessage): void {
  const level =
    msg.level === 'debug' || msg.level === 'info' || msg.level === 'warn' || msg.level === 'error' ? msg.level : 'info'
  fnLog[level]({ ...msg.fields, jobId: msg.jobId, attempt: msg.attempt, function: msg.fn }, msg.msg)
}
