/**
 * The schedule routes' logic (README "Schedules"): a definition is checked (cron and time zone by
 * croner, errors naming the field), stored in the schedule store, and shown with its next due
 * times and what the boss fired. Changing the cron or time zone, or resuming, starts owing due times
 * from that moment (`since`): nothing from before is caught up. Updates compare-and-set on the
 * revision read, so two API processes never lose each other's change.
 */
import { errors, isBosunError } from '../runner/errors.js'
import type { FiredMark, Schedule } from '../jobs/schedules/model.js'
import { DEFAULT_CATCH_UP_WINDOW_MS, ScheduleClock, ScheduleError } from '../jobs/schedules/plan.js'
import type { StoredSchedule } from '../jobs/schedules/store.js'
import type { ScheduleCreate, ScheduleUpdate, ScheduleView } from './schedule-schemas.js'

/** What the service needs of the schedule store (jobs/schedules/store.ts). */
export interface ScheduleRepo {
  create(s: Schedule): Promise<number>
  update(s: Schedule, revision: number): Promise<number>
  get(id: string): Promise<StoredSchedule | undefined>
  list(): Promise<StoredSchedule[]>
  remove(id: string): Promise<boolean>
  fired(id: string): Promise<FiredMark | undefined>
}

const NEXT_SHOWN = 5

function clockOf(cron: string, timezone: string): ScheduleClock {
  try {
    return new ScheduleClock(cron, timezone)
  } catch (err) {
    if (err instanceof ScheduleError)
      throw errors.VALIDATION(err.message, { details: { field: err.field, message: err.message } })
    throw err
  }
}

export class ScheduleService {
  constructor(
    private readonly repo: ScheduleRepo,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async create(body: ScheduleCreate): Promise<ScheduleView> {
    const at = this.now().toISOString()
    const { id, ...spec } = body
    const s = this.definition(id, spec, { createdAt: at, since: at })
    await this.store(this.repo.create(s))
    return this.view(s, undefined)
  }

  async update(id: string, body: ScheduleUpdate): Promise<ScheduleView> {
    const { schedule: old, revision } = await this.existing(id)
    const at = this.now().toISOString()
    const s = this.definition(id, body, { createdAt: old.createdAt, since: old.since })
    const restarted = s.cron !== old.cron || s.timezone !== old.timezone || (old.paused && !s.paused)
    if (restarted) s.since = at
    await this.store(this.repo.update(s, revision))
    return this.view(s, await this.store(this.repo.fired(id)))
  }

  async setPaused(id: string, paused: boolean): Promise<ScheduleView> {
    const { schedule: old, revision } = await this.existing(id)
    if (old.paused === paused) return this.view(old, await this.store(this.repo.fired(id)))
    const at = this.now().toISOString()
    const s: Schedule = { ...old, paused, updatedAt: at, ...(paused ? {} : { since: at }) }
    await this.store(this.repo.update(s, revision))
    return this.view(s, await this.store(this.repo.fired(id)))
  }

  async get(id: string): Promise<ScheduleView> {
    const { schedule } = await this.existing(id)
    return this.view(schedule, await this.store(this.repo.fired(id)))
  }

  async list(): Promise<ScheduleView[]> {
    const all = await this.store(this.repo.list())
    const marks = await this.store(Promise.all(all.map(({ schedule }) => this.repo.fired(schedule.id))))
    return all.map(({ schedule }, i) => this.view(schedule, marks[i]))
  }

  async remove(id: string): Promise<void> {
    if (!(await this.store(this.repo.remove(id)))) throw notFound(id)
  }

  /** A store call: the store's own failures (NATS or JetStream away) are 503s that say so. */
  private async store<T>(call: Promise<T>): Promise<T> {
    try {
      return await call
    } catch (err) {
      if (isBosunError(err)) throw err
      throw errors.STORE(`the schedule store failed: ${(err as Error).message}`, { cause: err })
    }
  }

  private async existing(id: string): Promise<StoredSchedule> {
    const found = await this.store(this.repo.get(id))
    if (!found) throw notFound(id)
    return found
  }

  private definition(id: string, spec: ScheduleUpdate, times: { createdAt: string; since: string }): Schedule {
    const timezone = spec.timezone ?? 'UTC'
    clockOf(spec.cron, timezone) // 400 naming the field when either is bad
    const s: Schedule = {
      id,
      cron: spec.cron,
      timezone,
      function: spec.function,
      jobOptions: spec.jobOptions ?? {},
      overlap: spec.overlap ?? 'allow',
      catchUp: spec.catchUp ?? 'latest',
      catchUpWindowMs: spec.catchUpWindowMs ?? DEFAULT_CATCH_UP_WINDOW_MS,
      paused: spec.paused ?? false,
      createdAt: times.createdAt,
      updatedAt: this.now().toISOString(),
      since: times.since,
    }
    if (spec.payload !== undefined) s.payload = spec.payload
    return s
  }

  private view(s: Schedule, mark: FiredMark | undefined): ScheduleView {
    const clock = clockOf(s.cron, s.timezone)
    const next: string[] = []
    for (let d = clock.next(this.now()); d !== null && next.length < NEXT_SHOWN && !s.paused; d = clock.next(d))
      next.push(d.toISOString())
    const { since: _since, ...shown } = s
    const v: ScheduleView = { ...shown, next, recent: mark?.recent ?? [] }
    if (mark) v.lastDue = mark.lastDue
    if (mark?.deferred !== undefined) v.deferred = mark.deferred
    return v
  }
}

function notFound(id: string) {
  return errors.SCHEDULE_NOT_FOUND(`schedule ${JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}…` : id)} not found`)
}
