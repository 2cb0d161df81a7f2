/**
 * The boss's scheduler (worker/boss/scheduler.ts) on in-memory fakes of its ports, in real time with
 * every-second schedules: each due time fired once, across a boss change with a gap (catchUp),
 * overlap skip and queue-one, pause and delete. The fakes' submit dedupes on the idempotency key as
 * the store does, and counts every submit, so a due time fired twice shows.
 */
import t from 'tap'
import type { JobState } from '../../jobs/model.js'
import type { FiredMark, Schedule } from '../../jobs/schedules/model.js'
import { Scheduler, type SchedulerPorts } from '../../worker/boss/scheduler.js'
import { silentLogger } from '../../runner/logger.js'
import { waitFor } from '../helpers/wait.js'

class FakeStore implements SchedulerPorts {
  readonly schedules = new Map<string, Schedule>()
  readonly marks = new Map<string, FiredMark>()
  /** key → job id (the store's idempotency claims). */
  readonly keys = new Map<string, string>()
  readonly states = new Map<string, JobState>()
  submits = 0
  private readonly watchers = new Set<(id: string, s: Schedule | undefined) => void>()
  private n = 0

  async watch(onChange: (id: string, s: Schedule | undefined) => void) {
    this.watchers.add(onChange)
    for (const [id, s] of this.schedules) onChange(id, s)
    return () => void this.watchers.delete(onChange)
  }
  put(s: Schedule) {
    this.schedules.set(s.id, s)
    for (const w of this.watchers) w(s.id, s)
  }
  remove(id: string) {
    this.schedules.delete(id)
    for (const w of this.watchers) w(id, undefined)
  }
  async fired(id: string) {
    const m = this.marks.get(id)
    return m && structuredClone(m)
  }
  async markFired(id: string, mark: FiredMark) {
    this.marks.set(id, structuredClone(mark))
  }
  async submit(_job: unknown, key: string) {
    this.submits++
    let id = this.keys.get(key)
    if (id === undefined) {
      id = `job-${++this.n}`
      this.keys.set(key, id)
      this.states.set(id, 'queued')
    }
    return id
  }
  async jobState(id: string) {
    return this.states.get(id)
  }
  /** Due times that got a job, in order. */
  dues(id: string): number[] {
    return [...this.keys.keys()]
      .filter((k) => k.startsWith(`schedule:${id}:`))
      .map((k) => Date.parse(k.slice(`schedule:${id}:`.length)))
      .sort((a, b) => a - b)
  }
}

const everySecond = (id: string, over: Partial<Schedule> = {}): Schedule => {
  const now = new Date().toISOString()
  return {
    id,
    cron: '* * * * * *',
    timezone: 'UTC',
    function: 'echo',
    jobOptions: {},
    overlap: 'allow',
    catchUp: 'all',
    catchUpWindowMs: 60_000,
    paused: false,
    createdAt: now,
    updatedAt: now,
    since: now,
    ...over,
  }
}

function boss(store: FakeStore, epoch: number) {
  let acting = true
  const s = new Scheduler(store, { epoch, acting: () => acting, logger: silentLogger(), retryMs: 100 })
  return {
    s,
    depose() {
      acting = false
      s.stop()
    },
  }
}

const contiguous = (dues: number[]) => dues.every((d, i) => i === 0 || d - dues[i - 1]! === 1000)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('every due time fired once, across a boss change with a gap (catchUp: all)', async (t) => {
  const store = new FakeStore()
  store.put(everySecond('tick'))
  const a = boss(store, 1)
  await a.s.start()
  await waitFor(() => store.dues('tick').length >= 2, { timeoutMs: 5000 })
  a.depose()
  const firedByA = store.dues('tick').length
  await sleep(2200) // no boss: two or three due times pass
  const b = boss(store, 2)
  await b.s.start()
  t.teardown(() => b.depose())
  await waitFor(() => store.dues('tick').length >= firedByA + 4, { timeoutMs: 8000 })
  const dues = store.dues('tick')
  t.ok(contiguous(dues), `every second from the first to the last, none missing (${dues.length})`)
  t.equal(store.marks.get('tick')!.epoch, 2, 'the mark is the new boss’s')
  // The new boss re-planned from the mark: nothing submitted twice beyond a mark written after the fire.
  t.ok(store.submits - dues.length <= 1, `submits ${store.submits} for ${dues.length} due times`)
})

t.test('a due time its predecessor fired but did not mark gets the existing job', async (t) => {
  const store = new FakeStore()
  const s = everySecond('once')
  store.put(s)
  const a = boss(store, 1)
  await a.s.start()
  await waitFor(() => store.dues('once').length >= 1, { timeoutMs: 5000 })
  a.depose()
  const firstDue = store.dues('once')[0]!
  store.marks.delete('once') // the old boss died between the job and its mark
  const b = boss(store, 2)
  await b.s.start()
  t.teardown(() => b.depose())
  await waitFor(() => store.marks.get('once')?.epoch === 2, { timeoutMs: 5000 })
  const jobsForFirst = [...store.keys.keys()].filter((k) => Date.parse(k.split(':').slice(2).join(':')) === firstDue)
  t.equal(jobsForFirst.length, 1, 'one job for that due time')
  t.ok(store.submits > store.dues('once').length, 'it was submitted again and deduplicated by its key')
})

t.test('catchUp none: due times missed without a boss are not fired', async (t) => {
  const store = new FakeStore()
  store.put(everySecond('now-only', { catchUp: 'none' }))
  const a = boss(store, 1)
  await a.s.start()
  await waitFor(() => store.dues('now-only').length >= 1, { timeoutMs: 5000 })
  a.depose()
  await sleep(3100)
  const b = boss(store, 2)
  await b.s.start()
  t.teardown(() => b.depose())
  await waitFor(() => store.marks.get('now-only')?.epoch === 2, { timeoutMs: 5000 })
  const dues = store.dues('now-only')
  const gaps = dues.slice(1).map((d, i) => d - dues[i]!)
  t.ok(
    gaps.some((g) => g >= 3000),
    `the gap stays a gap (${gaps.join(',')})`,
  )
})

t.test('overlap skip: no new job while the previous one is unfinished', async (t) => {
  const store = new FakeStore()
  store.put(everySecond('long', { overlap: 'skip' }))
  const a = boss(store, 1)
  t.teardown(() => a.depose())
  await a.s.start()
  await waitFor(() => store.dues('long').length === 1, { timeoutMs: 5000 })
  const first = store.keys.get([...store.keys.keys()][0]!)!
  store.states.set(first, 'running')
  const lastDueBefore = store.marks.get('long')!.lastDue
  await waitFor(() => store.marks.get('long')!.lastDue > lastDueBefore, { timeoutMs: 5000 })
  await sleep(1100)
  t.equal(store.dues('long').length, 1, 'due times passed, no second job')
  store.states.set(first, 'succeeded')
  await waitFor(() => store.dues('long').length === 2, { timeoutMs: 5000 })
  t.pass('the next due time after it finished fires')
})

t.test('overlap queue-one: one due time held back, fired when the previous job finishes', async (t) => {
  const store = new FakeStore()
  store.put(everySecond('q', { overlap: 'queue-one' }))
  const a = boss(store, 1)
  t.teardown(() => a.depose())
  await a.s.start()
  await waitFor(() => store.dues('q').length === 1, { timeoutMs: 5000 })
  const first = store.keys.get([...store.keys.keys()][0]!)!
  store.states.set(first, 'running')
  await waitFor(() => store.marks.get('q')?.deferred !== undefined, { timeoutMs: 5000 })
  const deferred = Date.parse(store.marks.get('q')!.deferred!)
  await sleep(2100)
  t.equal(store.dues('q').length, 1, 'nothing more while it runs')
  t.equal(Date.parse(store.marks.get('q')!.deferred!), deferred, 'still the first due time held back')
  store.states.set(first, 'succeeded')
  await waitFor(() => store.dues('q').includes(deferred), { timeoutMs: 5000 })
  t.pass('the held-back due time fired once the previous job finished')
})

t.test('paused and deleted schedules fire nothing', async (t) => {
  const store = new FakeStore()
  store.put(everySecond('p', { paused: true }))
  const a = boss(store, 1)
  t.teardown(() => a.depose())
  await a.s.start()
  await sleep(1500)
  t.equal(store.dues('p').length, 0, 'paused')
  store.put(everySecond('p'))
  await waitFor(() => store.dues('p').length >= 1, { timeoutMs: 5000 })
  store.remove('p')
  const n = store.dues('p').length
  await sleep(1500)
  t.equal(store.dues('p').length, n, 'deleted: no more')
  t.equal(a.s.size, 0)
})
