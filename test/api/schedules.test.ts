/**
 * The schedule routes (api/routes/schedules.ts, api/schedule-service.ts) through inject with an
 * in-memory schedule store: create (201, 409 on a taken id), 400 naming a bad cron or time zone and
 * changing nothing, read with the next due times and the fired jobs, replace (a new cron owes due
 * times from now on), pause/resume, delete, 404s, bearer auth, the OpenAPI document.
 */
import t from 'tap'
import { errors } from '../../runner/errors.js'
import type { FiredMark, Schedule } from '../../jobs/schedules/model.js'
import type { StoredSchedule } from '../../jobs/schedules/store.js'
import { ScheduleService, type ScheduleRepo } from '../../api/schedule-service.js'
import { errorShape, makeApp } from './helpers.js'

class MemoryRepo implements ScheduleRepo {
  readonly rows = new Map<string, StoredSchedule>()
  readonly marks = new Map<string, FiredMark>()
  private rev = 0
  async create(s: Schedule) {
    if (this.rows.has(s.id)) throw errors.SCHEDULE_EXISTS(`schedule ${s.id} exists`)
    this.rows.set(s.id, { schedule: structuredClone(s), revision: ++this.rev })
    return this.rev
  }
  async update(s: Schedule, revision: number) {
    if (this.rows.get(s.id)?.revision !== revision) throw errors.SCHEDULE_CHANGED('changed')
    this.rows.set(s.id, { schedule: structuredClone(s), revision: ++this.rev })
    return this.rev
  }
  async get(id: string) {
    const r = this.rows.get(id)
    return r && structuredClone(r)
  }
  async list() {
    return [...this.rows.values()].sort((a, b) => (a.schedule.id < b.schedule.id ? -1 : 1))
  }
  async remove(id: string) {
    this.marks.delete(id)
    return this.rows.delete(id)
  }
  async fired(id: string) {
    return this.marks.get(id)
  }
}

const TOKEN = 'token-ssssssssssssssss'
let clock = new Date('2026-12-02T10:00:00.500Z')

async function setup(t: Parameters<typeof makeApp>[0], apiTokens: string[] = []) {
  const repo = new MemoryRepo()
  const app = await makeApp(t, { schedules: new ScheduleService(repo, () => clock), apiTokens })
  return { ...app, repo }
}

const nightly = { id: 'nightly', cron: '0 30 2 * * *', timezone: 'Europe/Berlin', function: 'echo', payload: { n: 1 } }

t.test('create, read with the next due times, list', async (t) => {
  const { inject, repo } = await setup(t)
  const res = await inject({ method: 'POST', url: '/schedules', payload: nightly })
  t.equal(res.statusCode, 201, res.body)
  const v = res.json()
  t.match(v, {
    id: 'nightly',
    cron: '0 30 2 * * *',
    timezone: 'Europe/Berlin',
    function: 'echo',
    payload: { n: 1 },
    jobOptions: {},
    overlap: 'allow',
    catchUp: 'latest',
    paused: false,
    recent: [],
  })
  t.same(v.next.slice(0, 2), ['2026-12-03T01:30:00.000Z', '2026-12-04T01:30:00.000Z'], '02:30 in Berlin (CET)')
  t.equal(v.next.length, 5)
  t.notOk('since' in v, 'internal fields are not shown')
  t.equal(repo.rows.get('nightly')!.schedule.since, clock.toISOString(), 'due times owed from its creation')

  const again = await inject({ method: 'POST', url: '/schedules', payload: nightly })
  t.equal(again.statusCode, 409)
  t.equal(errorShape(again).code, 'BOSUN_ERR_SCHEDULE_EXISTS')

  repo.marks.set('nightly', {
    lastDue: '2026-12-02T01:30:00.000Z',
    epoch: 4,
    recent: [{ due: '2026-12-02T01:30:00.000Z', jobId: 'J-1' }],
  })
  const one = await inject({ method: 'GET', url: '/schedules/nightly' })
  t.equal(one.statusCode, 200)
  t.match(one.json(), {
    lastDue: '2026-12-02T01:30:00.000Z',
    recent: [{ due: '2026-12-02T01:30:00.000Z', jobId: 'J-1' }],
  })
  await inject({ method: 'POST', url: '/schedules', payload: { ...nightly, id: 'a-first' } })
  const list = await inject({ method: 'GET', url: '/schedules' })
  t.same(
    list.json().schedules.map((s: { id: string }) => s.id),
    ['a-first', 'nightly'],
  )
})

t.test('bad input: 400 naming the field, nothing stored', async (t) => {
  const { inject, repo } = await setup(t)
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...nightly, cron: '61 * * * *' }, /^cron: /],
    [{ ...nightly, cron: '0 0 30 2 *' }, /^cron: .*never due/],
    [{ ...nightly, timezone: 'Mars/Olympus' }, /^timezone: unknown time zone/],
    [{ ...nightly, id: 'has space' }, /id/],
    [{ ...nightly, function: 'Bad Name' }, /function/],
    [{ ...nightly, overlap: 'sometimes' }, /overlap/],
    [{ ...nightly, jobOptions: { priority: 5000 } }, /priority/],
    [{ ...nightly, surprise: 1 }, /surprise|additional/],
  ]
  for (const [payload, message] of cases) {
    const res = await inject({ method: 'POST', url: '/schedules', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.match(errorShape(res).message, message)
  }
  const tz = await inject({ method: 'POST', url: '/schedules', payload: { ...nightly, timezone: 'Nowhere/City' } })
  t.same(errorShape(tz).details?.field, 'timezone')
  t.equal(repo.rows.size, 0, 'nothing stored')
})

t.test('replace, pause, resume, delete; unknown ids are 404', async (t) => {
  const { inject, repo } = await setup(t)
  await inject({ method: 'POST', url: '/schedules', payload: nightly })
  const created = repo.rows.get('nightly')!.schedule
  clock = new Date('2026-12-02T11:00:00.000Z')
  const same = await inject({
    method: 'PUT',
    url: '/schedules/nightly',
    payload: { cron: nightly.cron, timezone: nightly.timezone, function: 'echo', overlap: 'skip' },
  })
  t.equal(same.statusCode, 200)
  t.equal(same.json().overlap, 'skip')
  t.equal(repo.rows.get('nightly')!.schedule.since, created.since, 'same cron: due times still owed from before')
  const moved = await inject({
    method: 'PUT',
    url: '/schedules/nightly',
    payload: { cron: '*/10 * * * *', function: 'echo' },
  })
  t.equal(moved.statusCode, 200)
  t.equal(repo.rows.get('nightly')!.schedule.since, clock.toISOString(), 'a new cron owes due times from now')
  t.equal(moved.json().timezone, 'UTC', 'a replacement is whole: the time zone is back to UTC')

  const paused = await inject({ method: 'POST', url: '/schedules/nightly/pause' })
  t.equal(paused.json().paused, true)
  t.same(paused.json().next, [], 'no due times while paused')
  clock = new Date('2026-12-02T12:00:00.000Z')
  const resumed = await inject({ method: 'POST', url: '/schedules/nightly/resume' })
  t.equal(resumed.json().paused, false)
  t.equal(repo.rows.get('nightly')!.schedule.since, clock.toISOString(), 'due times while paused are not owed')
  t.equal(resumed.json().createdAt, created.createdAt)

  t.equal((await inject({ method: 'DELETE', url: '/schedules/nightly' })).statusCode, 204)
  for (const [method, url] of [
    ['GET', '/schedules/nightly'],
    ['DELETE', '/schedules/nightly'],
    ['POST', '/schedules/nightly/pause'],
  ] as const) {
    const res = await inject({ method, url })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(errorShape(res).code, 'BOSUN_ERR_SCHEDULE_NOT_FOUND')
  }
  const put = await inject({
    method: 'PUT',
    url: '/schedules/nightly',
    payload: { cron: '* * * * *', function: 'echo' },
  })
  t.equal(put.statusCode, 404)
})

t.test('behind the bearer token; in the OpenAPI document', async (t) => {
  const { inject } = await setup(t, [TOKEN])
  t.equal((await inject({ method: 'GET', url: '/schedules' })).statusCode, 401)
  const ok = await inject({ method: 'GET', url: '/schedules', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(ok.statusCode, 200)
  const doc = (await inject({ method: 'GET', url: '/docs/json' })).json<{ paths: Record<string, object> }>()
  for (const p of ['/schedules', '/schedules/{id}', '/schedules/{id}/pause', '/schedules/{id}/resume'])
    t.ok(doc.paths[p], `${p} documented`)
})

t.test('a failing store is a 503 that says so, not a 500', async (t) => {
  const { inject, repo } = await setup(t)
  repo.get = async () => {
    throw new Error('TIMEOUT')
  }
  const res = await inject({ method: 'GET', url: '/schedules/any' })
  t.equal(res.statusCode, 503)
  t.equal(errorShape(res).code, 'BOSUN_ERR_STORE')
  t.match(errorShape(res).message, /schedule store failed/)
})
