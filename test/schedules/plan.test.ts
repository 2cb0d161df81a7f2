/**
 * Schedules, the pure part (jobs/schedules/plan.ts): cron expressions with seconds and time zones
 * through croner (DST computed, not waited for), bad input named by field, which due times a boss
 * fires after a gap under each `catchUp`, the overlap rule, and the per-due-time idempotency key.
 */
import t from 'tap'
import {
  MAX_FIRES_PER_PLAN,
  ScheduleClock,
  ScheduleError,
  overlapVerdict,
  planFires,
  scheduleJobKey,
} from '../../jobs/schedules/plan.js'

const iso = (ds: (Date | null)[]) => ds.map((d) => d?.toISOString() ?? null)
const at = (s: string) => new Date(s)

t.test('bad expressions and time zones are errors naming the field', async (t) => {
  const cases: [string, string | undefined, 'cron' | 'timezone'][] = [
    ['61 * * * *', undefined, 'cron'],
    ['not cron', undefined, 'cron'],
    ['* * * *', undefined, 'cron'],
    ['0 0 30 2 *', undefined, 'cron'], // 30 February: never due
    ['* * * * *', 'Mars/Olympus', 'timezone'],
    ['* * * * *', '', 'timezone'],
  ]
  for (const [cron, zone, field] of cases) {
    const err = t.throws(() => new ScheduleClock(cron, zone), `${cron} ${zone ?? ''}`) as ScheduleError
    t.ok(err instanceof ScheduleError)
    t.equal(err.field, field)
    t.match(err.message, new RegExp(`^${field}: `))
  }
  t.same(iso([new ScheduleClock('*/15 * * * *').next(at('2026-12-02T10:07:00Z'))]), ['2026-12-02T10:15:00.000Z'])
  t.same(iso([new ScheduleClock('*/20 * * * * *').next(at('2026-12-02T10:07:00Z'))]), ['2026-12-02T10:07:20.000Z'])
})

t.test('time zones and DST: computed', async (t) => {
  // Europe/Berlin springs forward on 2027-03-28 at 02:00 → 03:00: 02:30 does not exist that day.
  const daily = new ScheduleClock('0 30 2 * * *', 'Europe/Berlin')
  t.same(iso(daily.between(at('2027-03-26T12:00:00Z'), at('2027-03-29T12:00:00Z'), 10)), [
    '2027-03-27T01:30:00.000Z', // 02:30 CET
    '2027-03-28T01:00:00.000Z', // the gap: the first valid time after it, 03:00 CEST, once
    '2027-03-29T00:30:00.000Z', // 02:30 CEST
  ])
  // It falls back on 2026-10-25 at 03:00 → 02:00: 02:30 happens twice; a fixed time runs once.
  t.same(iso(daily.between(at('2026-10-24T12:00:00Z'), at('2026-10-26T12:00:00Z'), 10)), [
    '2026-10-25T00:30:00.000Z',
    '2026-10-26T01:30:00.000Z',
  ])
  // An interval runs on both occurrences of the repeated hour: 02:00, 02:30 CEST then CET.
  const halfHourly = new ScheduleClock('0 */30 2 * * *', 'Europe/Berlin')
  t.same(iso(halfHourly.between(at('2026-10-24T23:00:00Z'), at('2026-10-25T02:00:00Z'), 10)), [
    '2026-10-25T00:00:00.000Z',
    '2026-10-25T00:30:00.000Z',
    '2026-10-25T01:00:00.000Z',
    '2026-10-25T01:30:00.000Z',
  ])
  // New York: 09:00 local is 14:00Z in winter, 13:00Z in summer.
  const ny = new ScheduleClock('0 9 * * *', 'America/New_York')
  t.same(iso([ny.next(at('2027-01-10T00:00:00Z')), ny.next(at('2027-07-10T00:00:00Z'))]), [
    '2027-01-10T14:00:00.000Z',
    '2027-07-10T13:00:00.000Z',
  ])
})

t.test('on time: the due time now is fired, nothing skipped, the next one named', async (t) => {
  const clock = new ScheduleClock('* * * * * *')
  const now = at('2026-12-02T10:00:05.020Z')
  for (const catchUp of ['none', 'latest', 'all'] as const) {
    const p = planFires({ clock, catchUp, lastDue: at('2026-12-02T10:00:04Z'), since: at('2026-12-02T09:00:00Z'), now })
    t.same(iso(p.fire), ['2026-12-02T10:00:05.000Z'], catchUp)
    t.equal(p.skipped, false)
    t.same(iso([p.next]), ['2026-12-02T10:00:06.000Z'])
  }
})

t.test('after a 3 s gap without a boss: all fires every owed due time, latest one, none the on-time', async (t) => {
  const clock = new ScheduleClock('* * * * * *')
  const base = { clock, lastDue: at('2026-12-02T10:00:01Z'), since: at('2026-12-02T09:00:00Z') }
  const now = at('2026-12-02T10:00:04.400Z')
  const all = planFires({ ...base, catchUp: 'all', now })
  t.same(iso(all.fire), ['2026-12-02T10:00:02.000Z', '2026-12-02T10:00:03.000Z', '2026-12-02T10:00:04.000Z'])
  t.equal(all.skipped, false)
  const latest = planFires({ ...base, catchUp: 'latest', now })
  t.same(iso(latest.fire), ['2026-12-02T10:00:04.000Z'])
  t.equal(latest.skipped, true)
  const none = planFires({ ...base, catchUp: 'none', now })
  t.same(iso(none.fire), ['2026-12-02T10:00:04.000Z'], 'only what is at most 1 s late')
  t.equal(none.skipped, true)
})

t.test('the catch-up window bounds what is owed; a long gap is caught up over several plans', async (t) => {
  const clock = new ScheduleClock('* * * * *')
  const windowed = planFires({
    clock,
    catchUp: 'all',
    catchUpWindowMs: 3_600_000,
    lastDue: at('2026-12-02T08:00:00Z'),
    since: at('2026-12-01T00:00:00Z'),
    now: at('2026-12-02T10:00:30Z'),
  })
  t.equal(windowed.fire.length, 60, 'the last hour of minutes')
  t.same(iso([windowed.fire[0]!]), ['2026-12-02T09:01:00.000Z'])
  t.equal(windowed.skipped, true, 'the hour before it is passed over')

  const everySecond = new ScheduleClock('* * * * * *')
  const input = {
    clock: everySecond,
    catchUp: 'all' as const,
    since: at('2026-12-02T09:00:00Z'),
    now: at('2026-12-02T10:00:00Z'),
  }
  const first = planFires({ ...input, lastDue: undefined })
  t.equal(first.fire.length, MAX_FIRES_PER_PLAN)
  t.equal(first.skipped, false, 'capped, not skipped')
  const second = planFires({ ...input, lastDue: first.fire.at(-1) })
  t.equal(second.fire[0]!.getTime() - first.fire.at(-1)!.getTime(), 1000, 'the next plan goes on from there')
})

t.test('due times before `since` (creation, resume) are never owed', async (t) => {
  const clock = new ScheduleClock('* * * * * *')
  const p = planFires({
    clock,
    catchUp: 'all',
    lastDue: at('2026-12-02T10:00:00Z'),
    since: at('2026-12-02T10:05:00Z'), // paused at 10:00, resumed at 10:05
    now: at('2026-12-02T10:05:02.100Z'),
  })
  t.same(iso(p.fire), ['2026-12-02T10:05:01.000Z', '2026-12-02T10:05:02.000Z'])
  t.equal(p.skipped, false)
})

t.test('overlap: allow fires, skip drops, queue-one defers one', async (t) => {
  t.equal(overlapVerdict('allow', true, false), 'fire')
  t.equal(overlapVerdict('skip', false, false), 'fire')
  t.equal(overlapVerdict('skip', true, false), 'skip')
  t.equal(overlapVerdict('queue-one', true, false), 'defer')
  t.equal(overlapVerdict('queue-one', true, true), 'skip')
  t.equal(overlapVerdict('queue-one', false, false), 'fire')
})

t.test('one idempotency key per schedule and due time', async (t) => {
  const due = at('2026-12-02T10:00:05Z')
  t.equal(scheduleJobKey('nightly', due), 'schedule:nightly:2026-12-02T10:00:05.000Z')
  t.equal(scheduleJobKey('nightly', new Date(due.getTime())), scheduleJobKey('nightly', due))
  t.not(scheduleJobKey('nightly', due), scheduleJobKey('hourly', due))
})
