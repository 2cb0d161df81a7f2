/**
 * Schedules (cron), the pure part: when a schedule is due, and which due times a boss fires when it
 * looks — on time, or after a gap (no boss, a paused schedule) as the schedule's `catchUp` says —
 * and the idempotency key that makes each due time fire at most once across boss changes (a new
 * boss re-firing a due time its predecessor fired gets the existing job). Cron expressions (with
 * seconds) and time zones (DST included) are croner's; nothing here parses cron by hand.
 */
import { Cron } from 'croner'

export type CatchUp = 'none' | 'latest' | 'all'
export type Overlap = 'allow' | 'skip' | 'queue-one'

/** How late a due time may be fired when `catchUp` is `none` (timers and turns are not exact). */
export const ON_TIME_MS = 1000
/** `catchUpWindowMs` when a schedule gives none: due times older than this are not caught up. */
export const DEFAULT_CATCH_UP_WINDOW_MS = 3_600_000
/** Most due times one plan fires (a long gap of an every-second schedule is caught up over turns). */
export const MAX_FIRES_PER_PLAN = 1000

/** A cron expression in a time zone: 5 fields (minutes) or 6 (with seconds first). */
export class ScheduleClock {
  private readonly cron: Cron

  /** Throws a message naming the field (`cron`, `timezone`) when either is not valid. */
  constructor(expression: string, timezone = 'UTC') {
    const badZone = timezoneProblem(timezone)
    if (badZone) throw new ScheduleError('timezone', badZone)
    try {
      this.cron = new Cron(expression, { timezone, paused: true, mode: '5-or-6-parts' })
    } catch (err) {
      throw new ScheduleError('cron', `not a cron expression: ${(err as Error).message}`)
    }
    if (this.cron.nextRun(new Date(0)) === null) throw new ScheduleError('cron', 'it is never due')
  }

  /** The first due time strictly after `after`, or null when there is none. */
  next(after: Date): Date | null {
    return this.cron.nextRun(after)
  }

  /** The last due time at or before `at`, or null. */
  latest(at: Date): Date | null {
    return this.cron.previousRuns(1, new Date(at.getTime() + 1))[0] ?? null
  }

  /** Due times in (after, upTo], oldest first, at most `max`. */
  between(after: Date, upTo: Date, max: number): Date[] {
    const out: Date[] = []
    for (let d = this.next(after); d !== null && d <= upTo && out.length < max; d = this.next(d)) out.push(d)
    return out
  }
}

/** A field of a schedule that is not valid, and why (the API answers 400 naming the field). */
export class ScheduleError extends Error {
  constructor(
    readonly field: 'cron' | 'timezone',
    message: string,
  ) {
    super(`${field}: ${message}`)
  }
}

function timezoneProblem(zone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone })
    return undefined
  } catch {
    return `unknown time zone ${JSON.stringify(zone)} (an IANA name such as Europe/Berlin, or UTC)`
  }
}

export interface PlanInput {
  clock: ScheduleClock
  catchUp: CatchUp
  catchUpWindowMs?: number
  /** The newest due time already fired, if any. */
  lastDue: Date | undefined
  /** Due times at or before this were never meant to fire (the schedule's creation, or its resume). */
  since: Date
  now: Date
}

export interface Plan {
  /** Due times to fire now, oldest first. */
  fire: Date[]
  /** Whether due times were passed over (missed while no boss was there, or outside the window). */
  skipped: boolean
  /** The next due time after now (when to look again), or null. */
  next: Date | null
}

/**
 * Which due times to fire at `now`. Due times after max(lastDue, since) and at most `now` are owed:
 * `all` fires every one inside the catch-up window (at most MAX_FIRES_PER_PLAN, the rest next
 * time: lastDue advances), `latest` only the newest, `none` only those no later than ON_TIME_MS.
 */
export function planFires(p: PlanInput): Plan {
  const from = p.lastDue !== undefined && p.lastDue > p.since ? p.lastDue : p.since
  const next = p.clock.next(p.now)
  const owedFrom = (earliest: number) => new Date(Math.max(from.getTime(), earliest))
  const window = p.catchUpWindowMs ?? DEFAULT_CATCH_UP_WINDOW_MS
  if (p.catchUp === 'latest') {
    const newest = p.clock.latest(p.now)
    if (newest === null || newest <= from) return { fire: [], skipped: false, next }
    const inWindow = p.now.getTime() - newest.getTime() <= window
    const older = p.clock.next(from)
    return { fire: inWindow ? [newest] : [], skipped: !inWindow || (older !== null && older < newest), next }
  }
  const earliest = p.now.getTime() - (p.catchUp === 'all' ? window : ON_TIME_MS)
  const fire = p.clock.between(owedFrom(earliest - 1), p.now, MAX_FIRES_PER_PLAN)
  const firstOwed = p.clock.next(from)
  const skipped = firstOwed !== null && firstOwed <= p.now && (fire.length === 0 || firstOwed < fire[0]!)
  return { fire, skipped, next }
}

/**
 * What to do with a due time while the schedule's previous job may still run: `allow` fires it;
 * `skip` drops it; `queue-one` defers it until the previous job has finished (then fires it) —
 * one deferred due time at most, so a due time arriving while one is deferred is dropped.
 */
export function overlapVerdict(
  overlap: Overlap,
  previousUnfinished: boolean,
  oneDeferred: boolean,
): 'fire' | 'skip' | 'defer' {
  if (overlap === 'allow' || !previousUnfinished) return 'fire'
  if (overlap === 'queue-one' && !oneDeferred) return 'defer'
  return 'skip'
}

/** The idempotency key of a schedule's job for one due time: the same job whoever fires it. */
export function scheduleJobKey(scheduleId: string, due: Date): string {
  return `schedule:${scheduleId}:${due.toISOString()}`
}
