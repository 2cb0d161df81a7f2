/**
 * Dispatching: the pump takes ready jobs (keys in turn, then priority, then submission order) for
 * the least-loaded reachable worker that runs their function, within the function's and the key's
 * limits (flow-gate.ts; a limited function waits until the term has read every record, so the
 * running jobs it inherits are counted, and a rate-limited one until the stored rate windows are
 * read: rate-ledger.ts, which also makes the windows durable before such dispatches are sent),
 * marks them started through the door, and sends one
 * batch per worker carrying the term's epoch. A dispatch that certainly never arrived (no
 * responders, not connected) is put back at once and its worker backed off; an ambiguous one (no
 * reply in time) is left to reconcile. Timers wake the pump for delayed jobs and ended backoffs.
 */
import { errors, isBosunError } from '../../runner/index.js'
import {
  MSG,
  parseDispatchReply,
  type DispatchBody,
  type DispatchedJob,
  type DispatchReply,
} from '../../jobs/protocol.js'
import { MAX_TIMER_MS } from './commit.js'
import type { FleetWorker } from './fleet.js'
import type { Tracked } from './job-table.js'
import type { TermContext } from './term-context.js'
import { notStarted, started, undeliverable } from './transitions.js'
import { FinalCheck, finalBasis } from './worker-finals.js'

/**
 * A job as dispatched: what a worker runs it with (jobs/protocol.ts parseDispatchedJob), not its whole
 * record — the history, error and bookkeeping fields would only cost encoding, bytes and decoding.
 */
function dispatched(t: Tracked): DispatchedJob {
  const { job } = t
  const out: DispatchedJob = {
    id: job.id,
    function: job.function,
    attempts: job.attempts,
    payload: t.payloadRef ? null : job.payload,
    timeoutMs: job.timeoutMs,
  }
  // A payload the boss did not keep is read from the store by the worker.
  if (t.payloadRef) out.payloadRef = true
  if (job.run) out.run = job.run
  if (job.startedAt !== undefined) out.startedAt = job.startedAt
  const basis = finalBasis(t)
  if (basis) out.final = basis
  return out
}

/** Pause after a worker refused with 'unknown-epoch' (its view of ZooKeeper lags ours). */
const UNKNOWN_EPOCH_PAUSE_MS = 100
/** While leadership is in doubt the pump looks again this often. */
const DOUBT_RECHECK_MS = 50
/** After the rate windows could not be stored, the pump tries again this much later. */
const RATE_WRITE_RETRY_MS = 200
/** Stale queue entries (cancelled, re-queued) tolerated before the queue is compacted. */
const STALE_ENTRIES_BEFORE_COMPACT = 1024

export interface DispatchHooks {
  /** A worker did not answer a dispatch on NATS at all (no responders): it may be dead. */
  workerUnreachable(workerId: string): void
}

/** True when a request's error proves the message was never delivered. */
export function neverDelivered(err: unknown): boolean {
  if (isBosunError(err, errors.NO_RESPONDERS) || isBosunError(err, errors.CLOSED)) return true
  return isBosunError(err, errors.NATS_NOT_CONNECTED) && err.details?.sent === false
}

export class Dispatcher {
  private scheduled = false
  private timer: NodeJS.Timeout | undefined
  private timerAt = Infinity
  private rateTimerHandle: NodeJS.Timeout | undefined
  private rateAt = Infinity
  private readonly finals: FinalCheck

  constructor(
    private readonly ctx: TermContext,
    private readonly hooks: DispatchHooks,
  ) {
    this.finals = new FinalCheck(ctx)
  }

  /** Run the pump soon (coalesced). */
  wake(): void {
    if (this.scheduled || !this.ctx.acting()) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    if (this.rateTimerHandle) clearTimeout(this.rateTimerHandle)
    this.rateTimerHandle = undefined
  }

  /** A dispatch was refused or never arrived: back to the queue (or cancelled), attempt not counted. */
  undispatch(workerId: string, jobId: string): void {
    const { table, fleet, door } = this.ctx
    const t = table.get(jobId)
    if (!t || t.phase !== 'running' || t.job.worker !== workerId) {
      fleet.release(workerId, jobId) // not (or no longer) running there: drop a stray assignment
      return
    }
    void door.commit(t, notStarted(t.job, new Date()), 'background')
  }

  private pump(): void {
    const { ctx } = this
    if (!ctx.acting()) return
    if (!ctx.deps.isCurrent()) {
      // Leadership in doubt: dispatch nothing until it is confirmed (or the term is stopped).
      setTimeout(() => this.wake(), DOUBT_RECHECK_MS).unref()
      return
    }
    const now = Date.now()
    const nextDue = ctx.queue.promoteDue(now)
    const batches = new Map<string, DispatchedJob[]>()
    /** Workers whose batch has a rate-limited job: sent once the moved rate windows are durable. */
    const rated = new Set<string>()
    const isQueued = (e: { id: string; token: number }) => {
      const t = ctx.table.get(e.id)
      return t !== undefined && t.phase === 'queued' && t.token === e.token
    }
    const { gate } = ctx
    for (const fn of ctx.queue.functionsWithWork()) {
      const limited = gate.limited(fn)
      if (limited && ctx.state() !== 'active') continue // woken again when the load completes
      if (limited && !ctx.rates.loaded && gate.rateLimited(fn)) continue // woken once the rate windows are read
      const keyOpen = limited ? (key: string) => gate.keyOpen(fn, key, now) : undefined
      const ahead = !limited || !gate.rateLimited(fn) // a job ahead starts later than its start is counted
      for (;;) {
        if (limited && !gate.functionOpen(fn, now)) break
        const worker = ctx.fleet.pick(fn, now, ahead)
        if (!worker) break
        const entry = ctx.queue.popReady(fn, isQueued, keyOpen)
        if (!entry) break
        const t = ctx.table.get(entry.id)!
        if (t.checkDone) {
          void this.finals.check(t) // its worker may have written a final: read it first
          continue
        }
        if (limited) gate.dispatched(fn, entry.key, now)
        if (limited && gate.rateLimited(fn)) rated.add(worker.id)
        void ctx.door.commit(t, started(t.job, worker.id, new Date(now)), 'deferred')
        let batch = batches.get(worker.id)
        if (!batch) batches.set(worker.id, (batch = []))
        batch.push(dispatched(t))
      }
    }
    const moved = gate.takeMovedWindows()
    const durable = moved.length > 0 ? ctx.rates.record(moved) : undefined
    durable?.catch(() => undefined) // each batch that waits for it handles its failure
    for (const [workerId, jobs] of batches)
      void (durable && rated.has(workerId) ? this.sendAfter(durable, workerId, jobs) : this.send(workerId, jobs))
    if (ctx.queue.size > 2 * ctx.table.count('queued') + STALE_ENTRIES_BEFORE_COMPACT) ctx.queue.compact(isQueued)
    const rateOpens = gate.takeNextOpening()
    if (rateOpens !== undefined) this.rateTimer(rateOpens)
    this.armTimer(nextDue, ctx.fleet.nextBackoffEnd(now))
  }

  /** A rate window refused a start: when it opens, keys set aside at a rate limit are looked at again. */
  private rateTimer(at: number): void {
    if (this.rateAt <= at) return
    if (this.rateTimerHandle) clearTimeout(this.rateTimerHandle)
    this.rateAt = at
    this.rateTimerHandle = setTimeout(
      () => {
        this.rateTimerHandle = undefined
        this.rateAt = Infinity
        const { gate, queue } = this.ctx
        gate.sweep(Date.now())
        for (const fn of gate.limitedFunctions()) queue.unblockAll(fn)
        this.wake()
      },
      Math.max(1, at - Date.now()),
    )
    this.rateTimerHandle.unref()
  }

  /** Wake the pump when the next delayed job is due or a backed-off worker may be tried again. */
  private armTimer(...times: Array<number | undefined>): void {
    const at = Math.min(...times.map((x) => x ?? Infinity))
    if (!Number.isFinite(at) || at >= this.timerAt) return
    if (this.timer) clearTimeout(this.timer)
    this.timerAt = at
    // Node cannot wait longer than 2^31-1 ms (a 30-day delay would fire at once, forever): clamp and re-arm.
    this.timer = setTimeout(
      () => {
        this.timer = undefined
        this.timerAt = Infinity
        this.wake()
      },
      Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now())),
    )
    this.timer.unref()
  }

  /**
   * Send once the rate windows these starts moved are durable (a new boss then counts them); if
   * they cannot be written the jobs go back to the queue unsent.
   */
  private async sendAfter(durable: Promise<void>, workerId: string, jobs: DispatchedJob[]): Promise<void> {
    try {
      await durable
    } catch (err) {
      if (!this.ctx.acting()) return
      if (isBosunError(err, errors.STALE_EPOCH)) return this.ctx.fenced((err as Error).message)
      this.ctx.log.warn({ err, worker: workerId, jobs: jobs.length }, 'rate windows not stored; dispatch put back')
      for (const j of jobs) this.undispatch(workerId, j.id)
      setTimeout(() => this.wake(), RATE_WRITE_RETRY_MS).unref()
      return
    }
    return this.send(workerId, jobs)
  }

  private async send(workerId: string, jobs: DispatchedJob[]): Promise<void> {
    const { ctx } = this
    const worker = ctx.fleet.get(workerId)
    let reply: DispatchReply
    try {
      if (!worker) throw errors.NO_RESPONDERS('worker is gone')
      const opts = { timeoutMs: ctx.deps.settings.dispatchTimeoutMs, epoch: ctx.epoch }
      reply = parseDispatchReply(
        await ctx.deps.transport.request(
          worker.address,
          MSG.dispatch,
          { epoch: ctx.epoch, jobs } satisfies DispatchBody,
          opts,
        ),
      )
    } catch (err) {
      if (!ctx.acting()) return
      if (isBosunError(err, errors.BODY_TOO_LARGE)) return this.split(workerId, jobs)
      const unsent = neverDelivered(err)
      const backoffMs = isBosunError(err, errors.NATS_NOT_CONNECTED) ? 0 : ctx.fleet.backOff(workerId)
      ctx.log.warn({ err, worker: workerId, jobs: jobs.length, unsent, backoffMs }, 'dispatch failed')
      // Never delivered: put back at once. No reply in time is ambiguous: reconcile asks the worker.
      if (unsent) for (const j of jobs) this.undispatch(workerId, j.id)
      if (isBosunError(err, errors.NO_RESPONDERS)) this.hooks.workerUnreachable(workerId)
      this.wake()
      return
    }
    if (!ctx.acting()) return
    ctx.fleet.reachable(workerId)
    const byId = new Map(reply.answers.map((a) => [a.id, a]))
    for (const j of jobs) {
      const a = byId.get(j.id)
      if (a?.accepted) continue
      const reason = a && !a.accepted ? a.reason : 'malformed'
      if (reason === 'stale-epoch') return ctx.fenced(`worker ${workerId} has seen a newer epoch`)
      if (worker && (reason === 'draining' || reason === 'unknown-epoch'))
        this.pause(worker, reason === 'unknown-epoch' ? UNKNOWN_EPOCH_PAUSE_MS : undefined)
      else if (reason !== 'full') ctx.fleet.backOff(workerId) // it advertises what it refuses: do not loop on it
      this.undispatch(workerId, j.id)
    }
  }

  /** Stop dispatching to a worker: until its registration changes, or for `ms`. */
  private pause(worker: FleetWorker, ms?: number): void {
    worker.paused = true
    if (ms === undefined) return
    setTimeout(() => {
      worker.paused = false
      this.wake()
    }, ms).unref()
  }

  /** A batch over the NATS max_payload was never sent: send it in halves; a single job that big fails. */
  private split(workerId: string, jobs: DispatchedJob[]): void {
    if (jobs.length > 1) {
      const half = Math.ceil(jobs.length / 2)
      void this.send(workerId, jobs.slice(0, half))
      void this.send(workerId, jobs.slice(half))
      return
    }
    const t = this.ctx.table.get(jobs[0]!.id)
    if (!t || t.phase !== 'running' || t.job.worker !== workerId) return
    void this.ctx.door.commit(t, undeliverable(t.job, new Date()), 'background')
  }
}
