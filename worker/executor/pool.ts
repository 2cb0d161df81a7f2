/**
 * FunctionPool: runs job functions in worker threads, so a function that busy-loops can never stall
 * the main thread that holds the ZooKeeper session and the NATS connection.
 *
 * Hand-written on worker_threads rather than piscina (README "Dependency notes"): piscina's abort terminates the
 * thread at once and a task cannot be addressed once it runs, so "abort ctx.signal first, terminate
 * only after a grace period" would need a MessageChannel per job or a broadcast with start-up races.
 * Here each thread has one control port (its parentPort) carrying run / abort / done / log messages;
 * one job per thread; a thread is created only at start or to replace one that was stopped or died.
 */
import { basename, extname } from 'node:path'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import {
  abortOutcome,
  crashOutcome,
  failure,
  outcomeOfDone,
  THREAD_CODES,
  type AbortReason,
  type LiveChannel,
  type RunHandle,
  type RunOutcome,
} from './outcomes.js'
import {
  logThreadLine,
  spawnThread,
  type ThreadListener,
  type ThreadSlot,
  type ThreadSpawnOptions,
} from './function-thread.js'
import type { DoneMessage, ToThread } from './thread-protocol.js'
import { RunQueue } from './run-queue.js'
import { ModuleDescriber, type ModuleDeclaration } from './module-describer.js'
import type { FunctionPoolOptions, PoolStats, RunRequest } from './pool-types.js'

export type { FunctionPoolOptions, PoolStats, RunRequest } from './pool-types.js'

/** 900 KiB: below NATS's default 1 MiB max payload, with room for the envelope. */
export const DEFAULT_MAX_RESULT_BYTES = 900 * 1024
export const DEFAULT_ABORT_GRACE_MS = 1000
export const DEFAULT_MAX_LOG_LINES = 1000
export const DEFAULT_THREAD_HEAP_MB = 512
/** setTimeout's largest delay; longer timeouts are clamped to it (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

type Slot = ThreadSlot<Run>

interface Run {
  id: number
  req: RunRequest
  fn: string
  state: 'queued' | 'running' | 'aborting' | 'done'
  slot: Slot | undefined
  reason: AbortReason | undefined
  timer: NodeJS.Timeout | undefined
  resolve(outcome: RunOutcome): void
  promise: Promise<RunOutcome>
}

export class FunctionPool {
  private readonly log: Logger
  private readonly graceMs: number
  private readonly spawnOptions: ThreadSpawnOptions
  private readonly listener: ThreadListener<Run>
  private readonly slots: Slot[] = []
  private readonly idle: Slot[] = []
  private readonly queue = new RunQueue<Run>()
  private readonly live = new Set<Run>()
  private readonly respawnTimers = new Set<NodeJS.Timeout>()
  private nextId = 1
  private readonly describer = new ModuleDescriber()
  private busy = 0
  private accepting = true
  private closing: Promise<void> | undefined
  private bootFailures = 0
  private readonly counters: PoolStats = { threadsStarted: 0, hardStops: 0, crashes: 0, completed: 0 }

  constructor(opts: FunctionPoolOptions) {
    if (!Number.isSafeInteger(opts.concurrency) || opts.concurrency < 1)
      throw errors.CONFIG(`concurrency must be an integer >= 1, got ${opts.concurrency}`)
    this.log = opts.logger.child({ component: 'function-pool' })
    const fnLog = opts.logger.child({ component: 'job-function' })
    this.graceMs = opts.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS
    this.spawnOptions = {
      resourceLimits: opts.resourceLimits ?? { maxOldGenerationSizeMb: DEFAULT_THREAD_HEAP_MB },
      execArgv: opts.execArgv,
      threadData: {
        maxResultBytes: opts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES,
        maxLogLines: opts.maxLogLines ?? DEFAULT_MAX_LOG_LINES,
        // info and above are always sent: they are kept with the job (GET /jobs/:id/logs) whatever LOG_LEVEL says
        minLogLevel: fnLog.isLevelEnabled('debug') ? 'debug' : 'info',
        codes: THREAD_CODES,
      },
    }
    this.listener = {
      online: () => (this.bootFailures = 0),
      done: (slot, msg) => this.onDone(slot, msg),
      log: (slot, msg) => {
        logThreadLine(fnLog, msg)
        this.liveOf(slot, msg.id)?.log(msg.level, msg.msg, msg.fields)
      },
      progress: (slot, msg) => this.liveOf(slot, msg.id)?.progress(msg.value),
      described: (msg) => this.describer.onDescribed(msg),
      exit: (slot, code) => this.onExit(slot, code),
    }
    for (let i = 0; i < opts.concurrency; i++) {
      const slot = this.spawn()
      this.slots.push(slot)
      this.idle.push(slot)
    }
  }

  /** Threads, and so jobs that run at once. */
  get capacity(): number {
    return this.slots.length
  }

  /** Jobs running on a thread now (including ones aborting). */
  get running(): number {
    return this.busy
  }

  /** Jobs waiting for a free thread. */
  get queued(): number {
    return this.live.size - this.busy
  }

  stats(): PoolStats {
    return { ...this.counters }
  }

  /** Resolves when every thread has started; rejects if one cannot start (a broken install). */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready))
  }

  /**
   * Import `files` in a thread (as runs would) and report, per file, whether its module declares
   * `export const config = { isolation: 'inline' }` (worker/executor/module-describer.ts).
   */
  async describe(files: readonly string[], timeoutMs = 10_000): Promise<Map<string, ModuleDeclaration>> {
    const slot = this.slots[0]
    if (files.length === 0 || slot === undefined) return new Map(files.map((f) => [f, { inline: false }]))
    await slot.ready
    return this.describer.describe(slot.worker, files, timeoutMs)
  }

  /** Run a function; the outcome promise never rejects. */
  run(req: RunRequest): RunHandle {
    let resolve!: (o: RunOutcome) => void
    const promise = new Promise<RunOutcome>((r) => (resolve = r))
    const file = typeof req.functionFile === 'string' ? req.functionFile : ''
    const run: Run = {
      id: this.nextId++,
      req,
      fn: basename(file, extname(file)),
      state: 'queued',
      slot: undefined,
      reason: undefined,
      timer: undefined,
      resolve,
      promise,
    }
    const handle: RunHandle = { promise, abort: (reason) => this.abort(run, reason) }
    if (!this.accepting) {
      resolve(failure(errors.CLOSED.code, 'the function pool is closed'))
      return handle
    }
    if (file === '' || typeof req.jobId !== 'string') {
      resolve(failure(errors.BAD_MESSAGE.code, 'run request needs a jobId and a functionFile'))
      return handle
    }
    this.live.add(run)
    const slot = this.idle.pop()
    if (slot === undefined) this.queue.push(run)
    else if (!this.start(slot, run)) this.idle.push(slot)
    return handle
  }

  /** Stop taking runs, wait up to `timeoutMs` for queued and running ones to end, then close(). */
  async drain(timeoutMs: number): Promise<void> {
    this.accepting = false
    if (this.live.size > 0) {
      let timer: NodeJS.Timeout | undefined
      const deadline = new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, timeoutMs))))
      await Promise.race([Promise.all([...this.live].map((r) => r.promise)), deadline])
      clearTimeout(timer)
    }
    await this.close()
  }

  /** Abort queued and running jobs with 'shutdown' (grace period applies), then end all threads. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.shutdown()
    return this.closing
  }

  private async shutdown(): Promise<void> {
    this.accepting = false
    const pending = [...this.live]
    for (const run of pending) this.abort(run, 'shutdown')
    await Promise.all(pending.map((r) => r.promise))
    for (const timer of this.respawnTimers) clearTimeout(timer)
    this.respawnTimers.clear()
    await Promise.all(
      this.slots.map(async (slot) => {
        slot.retired = true
        try {
          await slot.worker.terminate()
        } catch (err) {
          this.log.warn({ err }, 'terminating a function thread failed')
        }
      }),
    )
    this.idle.length = 0
    this.log.debug(this.counters, 'function pool closed')
  }

  private spawn(): Slot {
    this.counters.threadsStarted++
    return spawnThread<Run>(this.spawnOptions, this.listener)
  }

  /** Give `run` to the free `slot`; false (and the run failed) when its payload cannot be sent. */
  private start(slot: Slot, run: Run): boolean {
    const { req } = run
    try {
      slot.worker.postMessage({
        t: 'run',
        id: run.id,
        jobId: req.jobId,
        attempt: req.attempt,
        file: req.functionFile,
        payload: req.payload,
      } satisfies ToThread)
    } catch (err) {
      this.settle(
        run,
        failure(errors.BAD_MESSAGE.code, `job payload cannot be sent to a function thread: ${(err as Error).message}`),
      )
      return false
    }
    run.state = 'running'
    run.slot = slot
    slot.run = run
    slot.worker.ref()
    this.busy++
    const t = req.timeoutMs
    if (typeof t === 'number' && t > 0 && Number.isFinite(t))
      run.timer = setTimeout(() => this.abort(run, 'timeout'), Math.min(t, MAX_TIMER_MS))
    return true
  }

  private abort(run: Run, reason: AbortReason): void {
    if (run.state === 'queued') {
      this.settle(run, abortOutcome(reason, { started: false, timeoutMs: run.req.timeoutMs }))
      return
    }
    if (run.state !== 'running' || run.slot === undefined) return
    run.state = 'aborting'
    run.reason = reason
    clearTimeout(run.timer)
    run.timer = setTimeout(() => this.hardStop(run), this.graceMs)
    run.slot.worker.postMessage({ t: 'abort', id: run.id, reason } satisfies ToThread)
  }

  /** The function ignored its aborted signal: terminate its thread and start another. */
  private hardStop(run: Run): void {
    const slot = run.slot
    if (run.state !== 'aborting' || slot === undefined) return
    this.counters.hardStops++
    this.log.warn(
      { jobId: run.req.jobId, function: run.fn, reason: run.reason, graceMs: this.graceMs },
      'job function ignored its abort signal: terminating its thread',
    )
    this.retire(slot)
    void slot.worker.terminate().catch((err: unknown) => this.log.warn({ err }, 'terminating a function thread failed'))
    this.finish(run, abortOutcome(run.reason ?? 'cancel', { hard: true, timeoutMs: run.req.timeoutMs }))
    this.replace(slot)
  }

  private onDone(slot: Slot, msg: DoneMessage): void {
    const run = slot.run
    if (slot.retired || run === undefined || run.id !== msg.id) return
    const outcome =
      run.reason !== undefined ? abortOutcome(run.reason, { timeoutMs: run.req.timeoutMs }) : outcomeOfDone(msg)
    if (!msg.ok && run.reason === undefined && this.log.isLevelEnabled('debug'))
      this.log.debug(
        { jobId: run.req.jobId, function: run.fn, error: msg.error, stack: msg.stack },
        'job function failed',
      )
    this.finish(run, outcome)
    slot.worker.unref()
    this.release(slot)
  }

  private onExit(slot: Slot, code: number): void {
    if (slot.retired) return
    this.retire(slot)
    this.counters.crashes++
    const run = slot.run
    this.log.warn(
      { exitCode: code, err: slot.lastError, jobId: run?.req.jobId, function: run?.fn },
      'function thread died; starting another',
    )
    if (run !== undefined) {
      this.finish(
        run,
        run.reason !== undefined
          ? abortOutcome(run.reason, { hard: true, timeoutMs: run.req.timeoutMs })
          : crashOutcome(slot.lastError, code, this.spawnOptions.resourceLimits.maxOldGenerationSizeMb),
      )
    }
    if (slot.online) return this.replace(slot)
    // It died while starting: a broken install, not a bad function. Retry slowly, never in a tight loop.
    const delay = Math.min(30_000, 500 * 2 ** this.bootFailures++)
    const timer = setTimeout(() => {
      this.respawnTimers.delete(timer)
      this.replace(slot)
    }, delay)
    timer.unref()
    this.respawnTimers.add(timer)
  }

  /** The live channel of run `id` if the slot still holds it (late messages of an ended run are dropped). */
  private liveOf(slot: Slot, id: number): LiveChannel | undefined {
    return !slot.retired && slot.run?.id === id ? slot.run.req.live : undefined
  }

  /** Take a slot out of service (hard stop or death). */
  private retire(slot: Slot): void {
    slot.retired = true
    const i = this.idle.indexOf(slot)
    if (i >= 0) this.idle.splice(i, 1)
  }

  private replace(old: Slot): void {
    if (this.closing !== undefined) return
    const i = this.slots.indexOf(old)
    const slot = this.spawn()
    if (i >= 0) this.slots[i] = slot
    else this.slots.push(slot)
    this.release(slot)
  }

  /** A slot is free: give it the next queued run or put it back on the idle stack. */
  private release(slot: Slot): void {
    if (slot.retired) return
    slot.run = undefined
    for (;;) {
      const next = this.queue.shift((r) => r.state === 'queued')
      if (next === undefined) return void this.idle.push(slot)
      if (this.start(slot, next)) return
    }
  }

  /** End a run that held a thread. */
  private finish(run: Run, outcome: RunOutcome): void {
    if (run.slot !== undefined && run.state !== 'done') this.busy--
    this.settle(run, outcome)
  }

  private settle(run: Run, outcome: RunOutcome): void {
    if (run.state === 'done') return
    run.state = 'done'
    clearTimeout(run.timer)
    this.live.delete(run)
    this.counters.completed++
    run.resolve(outcome)
  }
}
