/**
 * FunctionPool: runs job functions in worker threads, so a function that busy-loops can never stall
 * the main thread that holds the ZooKeeper session and the NATS connection. Hand-written on
 * worker_threads rather than piscina (README "Dependency notes"): piscina terminates a thread to
 * abort, where bosun aborts ctx.signal first and terminates only after a grace period, over one
 * control port per thread (run / abort / done / log messages, a turn's messages sent together).
 *
 * `concurrency` runs share `threads` threads (default: one per core), up to ⌈concurrency / threads⌉
 * each: on a small machine thread wake-ups, not the jobs, were most of a short job's cost. A function
 * found unfit to share runs alone from then on (thread-sharing.ts), on threads started as needed (up
 * to `concurrency`); a thread stopped for one run hands its other runs back.
 */
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import {
  abortOutcome,
  crashOutcome,
  failure,
  interruptedOutcome,
  outcomeOfDone,
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
import type { DoneMessage, RunMessage, SlowMessage } from './thread-protocol.js'
import { ThreadMailbox } from './thread-mailbox.js'
import { ThreadSharing } from './thread-sharing.js'
import { RunQueue } from './run-queue.js'
import { ModuleDescriber, type ModuleDeclaration } from './module-describer.js'
import {
  newRun,
  poolSettings,
  type FunctionPoolOptions,
  type PoolStats,
  type Run,
  type RunRequest,
} from './pool-types.js'

export type { FunctionPoolOptions, PoolStats, RunRequest } from './pool-types.js'
/** setTimeout's largest delay; longer timeouts are clamped to it (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

type Slot = ThreadSlot<Run>

export class FunctionPool {
  private readonly log: Logger
  private readonly graceMs: number
  private readonly spawnOptions: ThreadSpawnOptions
  private readonly listener: ThreadListener<Run>
  private readonly slots: Slot[] = []
  private readonly concurrency: number
  private readonly sharing: ThreadSharing
  private readonly mailbox = new ThreadMailbox<Run>((slot, msg, err) => this.unsendable(slot, msg, err))
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
    const fnLog = opts.logger.child({ component: 'job-function' })
    const settings = poolSettings(opts, fnLog.isLevelEnabled('debug'))
    this.concurrency = opts.concurrency
    this.log = opts.logger.child({ component: 'function-pool' })
    this.sharing = new ThreadSharing(Math.ceil(opts.concurrency / settings.threads), this.log)
    this.graceMs = settings.graceMs
    this.spawnOptions = settings.spawn
    this.listener = {
      online: () => (this.bootFailures = 0),
      done: (slot, msgs) => this.onDone(slot, msgs),
      slow: (slot, msg) => this.onSlow(slot, msg),
      log: (slot, msg) => {
        logThreadLine(fnLog, msg)
        this.liveOf(slot, msg.id)?.log(msg.level, msg.msg, msg.fields)
      },
      progress: (slot, msg) => this.liveOf(slot, msg.id)?.progress(msg.value),
      described: (msg) => this.describer.onDescribed(msg),
      exit: (slot, code) => this.onExit(slot, code),
    }
    for (let i = 0; i < settings.threads; i++) this.slots.push(this.spawn())
  }

  /** Jobs that run at once. */
  get capacity(): number {
    return this.concurrency
  }

  /** Threads now (more than at start when functions that run alone needed them). */
  get threads(): number {
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
    const run = newRun(this.nextId++, req)
    const handle: RunHandle = { promise: run.promise, abort: (reason) => this.abort(run, reason) }
    if (!this.accepting) {
      run.resolve(failure(errors.CLOSED.code, 'the function pool is closed'))
      return handle
    }
    if (run.file === '' || typeof req.jobId !== 'string') {
      run.resolve(failure(errors.BAD_MESSAGE.code, 'run request needs a jobId and a functionFile'))
      return handle
    }
    this.live.add(run)
    this.queue.push(run)
    this.pump()
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
    await Promise.all(this.slots.map((slot) => this.terminate(slot)))
    this.log.debug(this.counters, 'function pool closed')
  }

  /** Retire a thread and end it. */
  private terminate(slot: Slot): Promise<void> {
    slot.retired = true
    return slot.worker.terminate().then(
      () => undefined,
      (err: unknown) => this.log.warn({ err }, 'terminating a function thread failed'),
    )
  }

  private spawn(): Slot {
    this.counters.threadsStarted++
    return spawnThread<Run>(this.spawnOptions, this.listener)
  }

  /**
   * Start `run` on a thread that may take it (ThreadSharing), or on a new one: when none fits while
   * fewer than `concurrency` runs hold threads, every thread holds a run, so there are fewer than
   * `concurrency` threads. Not while threads fail to boot. False: it waits.
   */
  private place(run: Run): boolean {
    if (this.busy >= this.concurrency) return false
    let slot = this.sharing.pick(this.slots, run.file)
    if (slot === undefined) {
      if (this.bootFailures > 0 || this.closing !== undefined) return false
      slot = this.spawn()
      this.slots.push(slot)
    }
    this.start(slot, run)
    return true
  }

  private start(slot: Slot, run: Run): void {
    const { req } = run
    run.state = 'running'
    run.slot = slot
    if (slot.runs.size === 0) slot.worker.ref()
    slot.runs.set(run.id, run)
    if (this.sharing.runsAlone(run.file)) slot.solo = true
    this.busy++
    this.mailbox.send(slot, {
      t: 'run',
      id: run.id,
      jobId: req.jobId,
      attempt: req.attempt,
      file: run.file,
      payload: req.payload,
    })
    const t = req.timeoutMs
    if (typeof t === 'number' && t > 0 && Number.isFinite(t))
      run.timer = setTimeout(() => this.abort(run, 'timeout'), Math.min(t, MAX_TIMER_MS))
  }

  /** The run's payload cannot be sent to a thread (the structured clone refused it). */
  private unsendable(slot: Slot, msg: RunMessage, err: Error): void {
    const run = slot.runs.get(msg.id)
    if (run === undefined) return
    this.finish(
      run,
      failure(errors.BAD_MESSAGE.code, `job payload cannot be sent to a function thread: ${err.message}`),
    )
    this.pump()
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
    this.mailbox.send(run.slot, { t: 'abort', id: run.id, reason })
  }

  /** The function ignored its aborted signal: terminate its thread (handing back its other runs) and start another. */
  private hardStop(run: Run): void {
    const slot = run.slot
    if (run.state !== 'aborting' || slot === undefined) return
    this.counters.hardStops++
    this.log.warn(
      {
        jobId: run.req.jobId,
        function: run.fn,
        reason: run.reason,
        graceMs: this.graceMs,
        sharedWith: slot.runs.size - 1,
      },
      'job function ignored its abort signal: terminating its thread',
    )
    void this.terminate(slot)
    this.sharing.runAlone(run.file, 'it ignored its abort signal')
    this.finish(run, abortOutcome(run.reason ?? 'cancel', { hard: true, timeoutMs: run.req.timeoutMs }))
    const why = `its thread was stopped because job ${run.req.jobId}'s function (${run.fn}) ignored its abort signal`
    for (const other of [...slot.runs.values()]) this.finish(other, this.stoppedOutcome(other, interruptedOutcome(why)))
    this.replace(slot)
  }

  /** A run whose thread was stopped or died: hard-aborted if it was being aborted, else `otherwise`. */
  private stoppedOutcome(run: Run, otherwise: RunOutcome): RunOutcome {
    return run.reason !== undefined ? abortOutcome(run.reason, { hard: true, timeoutMs: run.req.timeoutMs }) : otherwise
  }

  private onDone(slot: Slot, msgs: readonly DoneMessage[]): void {
    if (slot.retired) return
    for (const msg of msgs) {
      const run = slot.runs.get(msg.id)
      if (run === undefined) continue
      const outcome =
        run.reason !== undefined ? abortOutcome(run.reason, { timeoutMs: run.req.timeoutMs }) : outcomeOfDone(msg)
      if (!msg.ok && run.reason === undefined && this.log.isLevelEnabled('debug'))
        this.log.debug(
          { jobId: run.req.jobId, function: run.fn, error: msg.error, stack: msg.stack },
          'job function failed',
        )
      this.finish(run, outcome)
    }
    this.pump()
  }

  /** A call held its thread too long: its function runs alone on a thread from now on. */
  private onSlow(slot: Slot, msg: SlowMessage): void {
    const run = slot.runs.get(msg.id)
    if (run === undefined || slot.retired) return
    slot.solo = true
    this.sharing.runAlone(run.file, `a call held its thread for ${msg.ms} ms`, run.req.jobId)
  }

  private onExit(slot: Slot, code: number): void {
    if (slot.retired) return
    slot.retired = true
    this.counters.crashes++
    const runs = [...slot.runs.values()]
    this.log.warn(
      { exitCode: code, err: slot.lastError, jobIds: runs.map((r) => r.req.jobId), functions: runs.map((r) => r.fn) },
      'function thread died; starting another',
    )
    // One run (or a thread that never started): the death is its own. Several: which one ended the
    // thread is unknown, so each is handed back and each function runs alone from now on — the one
    // to blame then fails by itself.
    const own = runs.length === 1 || !slot.online
    const why = `its thread died while it held ${runs.length} jobs, and which one's function ended it is unknown`
    for (const run of runs) {
      if (slot.online)
        this.sharing.runAlone(run.file, own ? 'its thread died under it' : 'its thread died under several jobs')
      const crash = own
        ? crashOutcome(slot.lastError, code, this.spawnOptions.resourceLimits.maxOldGenerationSizeMb)
        : interruptedOutcome(why)
      this.finish(run, this.stoppedOutcome(run, crash))
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
    return slot.retired ? undefined : slot.runs.get(id)?.req.live
  }

  private replace(old: Slot): void {
    if (this.closing !== undefined) return
    const i = this.slots.indexOf(old)
    const slot = this.spawn()
    if (i >= 0) this.slots[i] = slot
    else this.slots.push(slot)
    this.pump()
  }

  /** Threads have room: start the queued runs, oldest first, while one fits. */
  private pump(): void {
    for (;;) {
      const next = this.queue.peek()
      if (next === undefined) return
      if (next.state === 'queued' && !this.place(next)) return
      this.queue.shift(() => true)
    }
  }

  /** End a run that held a thread. */
  private finish(run: Run, outcome: RunOutcome): void {
    const slot = run.slot
    if (slot !== undefined && run.state !== 'done') {
      this.busy--
      slot.runs.delete(run.id)
      if (slot.runs.size === 0) {
        slot.solo = false
        slot.worker.unref()
      }
    }
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
