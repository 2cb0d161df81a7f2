/**
 * The boss fires schedules (jobs/schedules/): while its term dispatches, it follows every schedule
 * in the store and, at each due time, stores the schedule's job with the idempotency key of that due
 * time (`schedule:<id>:<due>`), so a due time its predecessor already fired gets the existing job —
 * exactly once per due time across any boss change. Due times owed after a gap (no boss, a restart)
 * are fired as the schedule's `catchUp` says (plan.ts); `overlap` skips or defers a due time while
 * the schedule's previous job is unfinished. After each due time the schedule's fired mark (last due
 * time, recent jobs, a deferred due time) is written, so a new boss goes on from there.
 */
import { isFinal, type JobState } from '../../jobs/model.js'
import { RECENT_FIRES, type FiredMark, type Schedule } from '../../jobs/schedules/model.js'
import { overlapVerdict, planFires, ScheduleClock, scheduleJobKey } from '../../jobs/schedules/plan.js'
import { jobToSubmit, type SubmittedJob } from '../../jobs/streams/records.js'
import type { Logger } from '../../runner/logger.js'

export interface SchedulerPorts {
  /** Every schedule now, then each change (undefined: deleted); resolves with a stop. */
  watch(onChange: (id: string, s: Schedule | undefined) => void): Promise<() => void>
  fired(id: string): Promise<FiredMark | undefined>
  markFired(id: string, mark: FiredMark): Promise<void>
  /** Store a job under an idempotency key: its id, or the id of the job that already holds the key. */
  submit(job: SubmittedJob, key: string): Promise<string>
  /** A fired job's state (undefined: not found). */
  jobState(id: string): Promise<JobState | undefined>
}

export interface SchedulerOptions {
  epoch: number
  /** Whether this term still acts (checked before every write). */
  acting(): boolean
  logger: Logger
  now?: () => number
  /** Wait before trying a schedule again after a failure, and between checks of a deferred due time. */
  retryMs?: number
}

/** Longest single timer; a due time further away is reached by re-arming. */
const MAX_TIMER_MS = 3_600_000

interface Entry {
  schedule: Schedule
  clock: ScheduleClock
  timer: NodeJS.Timeout | undefined
  busy: boolean
  again: boolean
}

export class Scheduler {
  private readonly entries = new Map<string, Entry>()
  private stopWatch: (() => void) | undefined
  private stopped = false
  private readonly now: () => number
  private readonly retryMs: number
  private readonly log: Logger

  constructor(
    private readonly ports: SchedulerPorts,
    private readonly o: SchedulerOptions,
  ) {
    this.now = o.now ?? Date.now
    this.retryMs = o.retryMs ?? 1000
    this.log = o.logger.child({ component: 'scheduler' })
  }

  async start(): Promise<void> {
    const stop = await this.ports.watch((id, s) => this.changed(id, s))
    if (this.stopped) stop()
    else this.stopWatch = stop
  }

  /** Idempotent. */
  stop(): void {
    this.stopped = true
    this.stopWatch?.()
    for (const e of this.entries.values()) clearTimeout(e.timer)
    this.entries.clear()
  }

  /** Schedules followed (tests, status). */
  get size(): number {
    return this.entries.size
  }

  private changed(id: string, s: Schedule | undefined): void {
    if (this.stopped) return
    const old = this.entries.get(id)
    if (old) clearTimeout(old.timer)
    if (s === undefined) {
      this.entries.delete(id)
      return
    }
    let clock: ScheduleClock
    try {
      clock = new ScheduleClock(s.cron, s.timezone)
    } catch (err) {
      this.log.warn({ schedule: id, err }, 'a stored schedule with a bad cron or time zone: not fired')
      this.entries.delete(id)
      return
    }
    const entry: Entry = { schedule: s, clock, timer: undefined, busy: old?.busy ?? false, again: false }
    this.entries.set(id, entry)
    this.tick(id)
  }

  /** Look at one schedule now (one look at a time per schedule; a look asked meanwhile runs after). */
  private tick(id: string): void {
    const e = this.entries.get(id)
    if (!e || this.stopped) return
    if (e.busy) {
      e.again = true
      return
    }
    e.busy = true
    this.look(e)
      .then((wakeInMs) => this.arm(id, wakeInMs))
      .catch((err: unknown) => {
        this.log.warn({ schedule: id, err }, 'firing a schedule failed; trying again')
        this.arm(id, this.retryMs)
      })
      .finally(() => {
        const now = this.entries.get(id)
        if (!now) return
        now.busy = false
        if (now.again) {
          now.again = false
          this.tick(id)
        }
      })
  }

  private arm(id: string, wakeInMs: number | undefined): void {
    const e = this.entries.get(id)
    if (!e || this.stopped || wakeInMs === undefined) return
    clearTimeout(e.timer)
    e.timer = setTimeout(() => this.tick(id), Math.max(0, Math.min(wakeInMs, MAX_TIMER_MS)))
    e.timer.unref()
  }

  /** Fire what is owed; resolves with when to look again (undefined: never, until it changes). */
  private async look(e: Entry): Promise<number | undefined> {
    const s = e.schedule
    if (s.paused || !this.o.acting()) return undefined
    const stored = await this.ports.fired(s.id)
    const mark: FiredMark = stored ?? { lastDue: s.since, epoch: this.o.epoch, recent: [] }
    if (mark.deferred !== undefined) {
      if (await this.previousUnfinished(mark)) return this.retryMs
      const due = new Date(mark.deferred)
      delete mark.deferred
      if (!(await this.fire(s, due, mark))) return undefined
    }
    const now = new Date(this.now())
    const plan = planFires({
      clock: e.clock,
      catchUp: s.catchUp,
      catchUpWindowMs: s.catchUpWindowMs,
      lastDue: stored ? new Date(stored.lastDue) : undefined,
      since: new Date(s.since),
      now,
    })
    if (plan.skipped) this.log.info({ schedule: s.id, catchUp: s.catchUp }, 'due times passed over (catchUp)')
    for (const due of plan.fire) {
      const verdict =
        s.overlap === 'allow'
          ? 'fire'
          : overlapVerdict(s.overlap, await this.previousUnfinished(mark), mark.deferred !== undefined)
      if (verdict === 'defer') {
        mark.deferred = due.toISOString()
        mark.lastDue = due.toISOString()
        if (!(await this.write(s, mark))) return undefined
      } else if (verdict === 'skip') {
        mark.lastDue = due.toISOString()
        if (!(await this.write(s, mark))) return undefined
        this.log.info({ schedule: s.id, due }, 'due time skipped: the previous job is unfinished (overlap)')
      } else if (!(await this.fire(s, due, mark))) return undefined
    }
    const next = plan.next === null ? undefined : plan.next.getTime() - this.now()
    return mark.deferred !== undefined ? Math.min(next ?? this.retryMs, this.retryMs) : next
  }

  /** Store the job of `due` and advance the mark; false when this term no longer acts. */
  private async fire(s: Schedule, due: Date, mark: FiredMark): Promise<boolean> {
    if (!this.o.acting()) return false
    const jobId = await this.ports.submit(jobOf(s, due), scheduleJobKey(s.id, due))
    mark.recent = [{ due: due.toISOString(), jobId }, ...mark.recent.filter((f) => f.due !== due.toISOString())]
    mark.recent = mark.recent.slice(0, RECENT_FIRES)
    if (mark.lastDue < due.toISOString()) mark.lastDue = due.toISOString()
    this.log.debug({ schedule: s.id, due, job: jobId }, 'schedule fired')
    return this.write(s, mark)
  }

  private async write(s: Schedule, mark: FiredMark): Promise<boolean> {
    if (!this.o.acting()) return false
    mark.epoch = this.o.epoch
    await this.ports.markFired(s.id, mark)
    return true
  }

  private async previousUnfinished(mark: FiredMark): Promise<boolean> {
    const previous = mark.recent[0]?.jobId
    if (previous === undefined) return false
    const state = await this.ports.jobState(previous)
    return state !== undefined && !isFinal(state)
  }
}

/** The job a schedule fires (its idempotency key is the due time's, added by the caller). */
function jobOf(s: Schedule, now: Date): SubmittedJob {
  return jobToSubmit({ function: s.function, payload: s.payload, ...s.jobOptions }, now)
}
