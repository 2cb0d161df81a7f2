/**
 * The one door: every change of a job's state at the boss goes through `commit`. It sets the record
 * (a rule from transitions.ts), releases or assigns the worker, queues a job that became queued,
 * writes with the fence, and only after the durable write announces a finished job and wakes the
 * dispatcher. Nothing else in the boss calls `JobTable.set` or announces a job.
 */
import type { Logger } from '../../runner/index.js'
import type { Job } from '../../jobs/model.js'
import type { Fleet } from './fleet.js'
import type { FlowGate } from './flow-gate.js'
import type { JobTable, PersistOptions, Tracked } from './job-table.js'
import type { ReadyQueue } from './ready-queue.js'
import { RunQueue } from '../executor/run-queue.js'

/**
 * How a change is made durable:
 * - `await`: the returned promise resolves once the store holds it (acks, cancels, finals);
 * - `background`: written now, failures retried and logged (requeues, adoptions);
 * - `deferred`: written only if the job still runs after the running-write delay (dispatch);
 * - `none`: already durable (a record read from the store).
 */
export type Durability = 'await' | 'background' | 'deferred' | 'none'

/** Longest a timer may wait (Node clamps longer delays to 1 ms and warns): re-armed when it fires early. */
export const MAX_TIMER_MS = 2 ** 31 - 1

export interface DoorDeps {
  table: JobTable
  fleet: Fleet
  queue: ReadyQueue
  /** Counts running jobs per function and key (flow limits). */
  gate: FlowGate
  log: Logger
  /** A dispatched job's running state is written only if it still runs after this long (0: at once). */
  runningWriteDelayMs: number
  /**
   * Tell waiting API requests a job finished (its final record is durable; `job` is that record, to
   * be sent along when `withRecord`).
   */
  publishFinished(job: Job, withRecord: boolean): void
  /** A finished job's record is durable: it leaves the table (and its batch may close). */
  onFinal(t: Tracked): void
  /** Something may be dispatchable now. */
  wake(): void
  /** False once the term stopped. */
  acting(): boolean
}

/** A dispatched job's running write, due at `due` (ms) if the job still runs that attempt on that worker. */
interface DueRunningWrite {
  t: Tracked
  attempt: number
  worker: string | undefined
  due: number
}

export class Door {
  /** The persist options of a commit, made once: a copy per commit costs the boss ≈ 2 µs a job. */
  private readonly plainOpts: PersistOptions = { onFinalStored: (x) => this.publishOnce(x) }
  private readonly fromResultOpts: PersistOptions = { fromResult: true, onFinalStored: (x) => this.publishOnce(x) }
  /**
   * Dispatched jobs whose running state is written if they still run when due. One delay for all,
   * so arrival order is due order: one timer for the queue's head, not one per job.
   */
  private readonly runningDue = new RunQueue<DueRunningWrite>()
  private runningTimer: NodeJS.Timeout | undefined

  constructor(private readonly d: DoorDeps) {}

  /** Change `t` to `next`; see {@link Durability}. The promise rejects when an awaited write cannot be made. */
  commit(
    t: Tracked,
    next: Job,
    durability: Durability,
    persistOpts: Pick<PersistOptions, 'fromResult'> = {},
  ): Promise<void> {
    const opts = persistOpts.fromResult ? this.fromResultOpts : this.plainOpts
    const prev = t.job
    this.d.table.set(t, next)
    this.bookkeep(t, prev)
    if (t.phase === 'queued') this.enqueue(t)
    switch (durability) {
      case 'none':
        t.storedVersion = t.localVersion
        this.afterDurable(t)
        return Promise.resolve()
      case 'deferred':
        this.deferRunningWrite(t)
        return Promise.resolve()
      case 'background':
        this.d.table.persist(t, opts).then(
          () => this.afterDurable(t),
          (err: unknown) => this.d.log.debug({ err, jobId: t.job.id }, 'write abandoned'),
        )
        return Promise.resolve()
      case 'await':
        return this.d.table.persist(t, opts).then(() => this.afterDurable(t))
    }
  }

  /** Release what a job holds when it leaves the table (a due running write finds it gone). */
  forget(t: Tracked): void {
    if (t.job.state === 'running' && t.job.worker !== undefined) this.d.fleet.release(t.job.worker, t.job.id)
    this.d.gate.leave(t.job.id)
  }

  /** Worker bookkeeping of one change: the slot it held is released, the slot it takes is assigned. */
  private bookkeep(t: Tracked, prev: Job): void {
    const now = t.job
    const heldBefore = prev.state === 'running' ? prev.worker : undefined
    const holdsNow = now.state === 'running' ? now.worker : undefined
    if (heldBefore !== undefined && heldBefore !== holdsNow) this.d.fleet.release(heldBefore, now.id)
    if (holdsNow !== undefined) {
      if (heldBefore !== holdsNow || prev.attempts !== now.attempts) t.dispatchedAt = Date.now()
      this.d.fleet.assign(holdsNow, now.id)
      this.d.gate.enter(now.id, now.function, now.concurrencyKey)
    } else this.d.gate.leave(now.id)
  }

  /** Put a queued job back in the ready queue as it is (taken out for a check: worker-finals.ts). */
  ready(t: Tracked): void {
    if (t.phase === 'queued') this.enqueue(t)
  }

  private enqueue(t: Tracked): void {
    const runAt = t.job.runAt ? Date.parse(t.job.runAt) : 0
    t.token++
    this.d.queue.push({
      id: t.job.id,
      fn: t.job.function,
      priority: t.job.priority,
      runAt: Number.isFinite(runAt) ? runAt : 0,
      token: t.token,
      key: t.job.concurrencyKey,
    })
    this.d.wake()
  }

  private deferRunningWrite(t: Tracked): void {
    if (this.d.runningWriteDelayMs <= 0) return this.writeRunning(t)
    this.runningDue.push({
      t,
      attempt: t.job.attempts,
      worker: t.job.worker,
      due: Date.now() + this.d.runningWriteDelayMs,
    })
    if (this.runningTimer) return
    this.runningTimer = setTimeout(() => this.writeDueRunning(), this.d.runningWriteDelayMs)
    this.runningTimer.unref() // a stopped term's timer keeps nothing alive
  }

  /** The running writes that are due: of each job that still runs the attempt it was dispatched for. */
  private writeDueRunning(): void {
    this.runningTimer = undefined
    if (!this.d.acting()) {
      this.runningDue.clear()
      return
    }
    const now = Date.now()
    for (let next = this.runningDue.peek(); next && next.due <= now; next = this.runningDue.peek()) {
      this.runningDue.shift(() => true)
      const { t, attempt, worker } = next
      const current = t.phase === 'running' && t.job.attempts === attempt && t.job.worker === worker
      if (current && this.d.table.get(t.job.id) === t) this.writeRunning(t)
    }
    const head = this.runningDue.peek()
    if (head) this.runningTimer = setTimeout(() => this.writeDueRunning(), Math.max(1, head.due - now))
  }

  private writeRunning(t: Tracked): void {
    this.d.table.persist(t).then(
      () => this.afterDurable(t),
      (err: unknown) => this.d.log.debug({ err, jobId: t.job.id }, 'running write abandoned'),
    )
  }

  /** The store holds `t`'s record now (the table may have cut it to fit: settle what that changed). */
  private afterDurable(t: Tracked): void {
    if (!this.d.acting() || t.phase !== 'final' || t.announced) return
    if (t.storedVersion < t.localVersion) return // a newer change is still on its way to the store
    t.announced = true
    if (t.job.worker !== undefined) this.d.fleet.release(t.job.worker, t.job.id)
    this.d.onFinal(t)
    this.publishOnce(t)
    this.d.wake()
  }

  /**
   * The finished event, once per job, as soon as its final record is durable: the done mask or the
   * batch's close that follow are the boss's bookkeeping, not what a waiting client reads.
   */
  private publishOnce(t: Tracked): void {
    if (!this.d.acting() || t.phase !== 'final' || t.published) return
    t.published = true
    // The record is the stored one, unless the boss did not keep the payload (then it is read from the store).
    this.d.publishFinished(t.job, t.waited && !t.payloadRef)
  }
}
