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
import { Worker, type ResourceLimits } from 'node:worker_threads'
import { basename, extname } from 'node:path'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { abortOutcome, crashOutcome, failure, THREAD_CODES, type AbortReason, type RunOutcome } from './outcomes.js'
import { THREAD_ENTRY } from './paths.js'
import type { DoneMessage, FromThread, LogMessage, ThreadData, ToThread } from './thread-protocol.js'
import { RunQueue } from './run-queue.js'

export type { AbortReason, RunOutcome }

/** 900 KiB: below NATS's default 1 MiB max payload, with room for the envelope. */
export const DEFAULT_MAX_RESULT_BYTES = 900 * 1024
export const DEFAULT_ABORT_GRACE_MS = 1000
export const DEFAULT_MAX_LOG_LINES = 1000
export const DEFAULT_THREAD_HEAP_MB = 512
/** setTimeout's largest delay; longer timeouts are clamped to it (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1
const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const

export interface FunctionPoolOptions {
  /** Threads, and so jobs run at once (WORKER_CONCURRENCY). */
  concurrency: number
  logger: Logger
  /** Largest result, as UTF-8 JSON bytes. @defaultValue 900 KiB */
  maxResultBytes?: number
  /** How long a function may ignore its aborted signal before its thread is terminated. @defaultValue 1000 */
  abortGraceMs?: number
  /** ctx.log lines forwarded per run. @defaultValue 1000 */
  maxLogLines?: number
  /**
   * Per-thread V8 limits; a function that exceeds them fails its job, not the process.
   * @defaultValue { maxOldGenerationSizeMb: 512 }
   */
  resourceLimits?: ResourceLimits
  /** Node options of the threads. @defaultValue process.execArgv (inherited, as Worker does) */
  execArgv?: string[]
}

export interface RunRequest {
  jobId: string
  /** 1-based. */
  attempt: number
  /** Absolute path of the function module (from FunctionCatalog.resolve). */
  functionFile: string
  payload: unknown
  /** Abort ctx.signal this long after the function starts; 0 or absent: no timeout. */
  timeoutMs?: number
}

export interface RunHandle {
  /** Settles once, never rejects. */
  promise: Promise<RunOutcome>
  /** Abort the run: a queued run ends at once, a running one gets its signal aborted. Idempotent. */
  abort(reason: AbortReason): void
}

/** Counters since the pool started. */
export interface PoolStats {
  threadsStarted: number
  /** Threads terminated because a function ignored its aborted signal. */
  hardStops: number
  /** Threads that died under or between jobs (uncaught errors, process.exit, heap limit). */
  crashes: number
  completed: number
}

interface Slot {
  worker: Worker
  run: Run | undefined
  online: boolean
  /** Stopped on purpose or dead: its events are ignored. */
  retired: boolean
  lastError: unknown
  ready: Promise<void>
}

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
  private readonly fnLog: Logger
  private readonly threadData: ThreadData
  private readonly graceMs: number
  private readonly resourceLimits: ResourceLimits
  private readonly execArgv: string[] | undefined
  private readonly slots: Slot[] = []
  private readonly idle: Slot[] = []
  private readonly queue = new RunQueue<Run>()
  private readonly live = new Set<Run>()
  private readonly respawnTimers = new Set<NodeJS.Timeout>()
  private nextId = 1
  private readonly describing = new Map<number, (configs: Record<string, { inline: boolean }>) => void>()
  private busy = 0
  private accepting = true
  private closing: Promise<void> | undefined
  private bootFailures = 0
  private readonly counters: PoolStats = { threadsStarted: 0, hardStops: 0, crashes: 0, completed: 0 }

  constructor(opts: FunctionPoolOptions) {
    if (!Number.isSafeInteger(opts.concurrency) || opts.concurrency < 1)
      throw errors.CONFIG(`concurrency must be an integer >= 1, got ${opts.concurrency}`)
    this.log = opts.logger.child({ component: 'function-pool' })
    this.fnLog = opts.logger.child({ component: 'job-function' })
    this.graceMs = opts.abortGraceMs ?? DEFAULT_ABORT_GRACE_MS
    this.resourceLimits = opts.resourceLimits ?? { maxOldGenerationSizeMb: DEFAULT_THREAD_HEAP_MB }
    this.execArgv = opts.execArgv
    this.threadData = {
      maxResultBytes: opts.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES,
      maxLogLines: opts.maxLogLines ?? DEFAULT_MAX_LOG_LINES,
      minLogLevel: LOG_LEVELS.find((l) => this.fnLog.isLevelEnabled(l)) ?? 'silent',
      codes: THREAD_CODES,
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
   * `export const config = { isolation: 'inline' }`. A module that fails to load, or a thread that
   * does not answer within `timeoutMs`, counts as not inline.
   */
  async describe(files: readonly string[], timeoutMs = 10_000): Promise<Map<string, boolean>> {
    const out = new Map(files.map((f) => [f, false]))
    const slot = this.slots[0]
    if (files.length === 0 || slot === undefined) return out
    await slot.ready
    const id = this.nextId++
    const answer = new Promise<Record<string, { inline: boolean }> | undefined>((resolve) => {
      const timer = setTimeout(() => {
        this.describing.delete(id)
        resolve(undefined)
      }, timeoutMs)
      this.describing.set(id, (configs) => {
        clearTimeout(timer)
        resolve(configs)
      })
    })
    slot.worker.postMessage({ t: 'describe', id, files: [...files] } satisfies ToThread)
    const configs = await answer
    for (const f of files) out.set(f, configs?.[f]?.inline === true)
    return out
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
    const worker = new Worker(THREAD_ENTRY, {
      workerData: this.threadData,
      resourceLimits: this.resourceLimits,
      ...(this.execArgv === undefined ? {} : { execArgv: this.execArgv }),
    })
    worker.unref()
    this.counters.threadsStarted++
    let onReady!: () => void
    let onFail!: (err: Error) => void
    const slot: Slot = {
      worker,
      run: undefined,
      online: false,
      retired: false,
      lastError: undefined,
      ready: new Promise<void>((res, rej) => ((onReady = res), (onFail = rej))),
    }
    slot.ready.catch(() => {}) // observed through ready(); never an unhandled rejection
    worker.on('message', (msg: FromThread) => {
      if (msg.t === 'described') return this.describing.get(msg.id)?.(msg.configs)
      if (msg.t !== 'ready') return this.onMessage(slot, msg)
      slot.online = true
      this.bootFailures = 0
      onReady()
    })
    worker.on('error', (err) => {
      slot.lastError = err
      if (!slot.online) onFail(err)
    })
    worker.on('exit', (code) => {
      if (!slot.online) onFail(new Error(`function thread exited with code ${code} before it started`))
      this.onExit(slot, code)
    })
    return slot
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

  private onMessage(slot: Slot, msg: DoneMessage | LogMessage): void {
    if (msg.t === 'log') return this.forwardLog(msg)
    const run = slot.run
    if (slot.retired || run === undefined || run.id !== msg.id) return
    let outcome: RunOutcome
    if (run.reason !== undefined) outcome = abortOutcome(run.reason, { timeoutMs: run.req.timeoutMs })
    else if (msg.ok) {
      try {
        outcome = { ok: true, result: JSON.parse(msg.json) }
      } catch (err) {
        outcome = failure(
          errors.RESULT_NOT_SERIALIZABLE.code,
          `job result could not be read back: ${(err as Error).message}`,
        )
      }
    } else {
      outcome = { ok: false, error: msg.error }
      if (this.log.isLevelEnabled('debug'))
        this.log.debug(
          { jobId: run.req.jobId, function: run.fn, error: msg.error, stack: msg.stack },
          'job function failed',
        )
    }
    this.finish(run, outcome)
    slot.worker.unref()
    this.release(slot)
  }

  private forwardLog(msg: LogMessage): void {
    const level =
      msg.level === 'debug' || msg.level === 'info' || msg.level === 'warn' || msg.level === 'error'
        ? msg.level
        : 'info'
    this.fnLog[level]({ ...msg.fields, jobId: msg.jobId, attempt: msg.attempt, function: msg.fn }, msg.msg)
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
          : crashOutcome(slot.lastError, code, this.resourceLimits.maxOldGenerationSizeMb),
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
