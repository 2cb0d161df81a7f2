/**
 * The schedule store (jobs/schedules/store.ts) on a real nats-server: create-if-absent, updates
 * compare-and-set on the revision read, list and remove (with the firing state), fired marks, a
 * live watch (current definitions first, then changes and deletes), and garbage in the bucket
 * dropped, never returned.
 */
import t from 'tap'
import { Kvm } from '@nats-io/kv'
import { connect } from '@nats-io/transport-node'
import { silentLogger } from '../../runner/logger.js'
import type { Schedule } from '../../jobs/schedules/model.js'
import { ScheduleStore, scheduleBucket } from '../../jobs/schedules/store.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'

const nats = await startNats()
const nc = await connect({ servers: nats.url })
t.teardown(async () => {
  await nc.close()
  await nats.close()
})

const schedule = (id: string, over: Partial<Schedule> = {}): Schedule => ({
  id,
  cron: '*/5 * * * * *',
  timezone: 'UTC',
  function: 'echo',
  payload: { hello: id },
  jobOptions: { priority: 3 },
  overlap: 'skip',
  catchUp: 'all',
  catchUpWindowMs: 60_000,
  paused: false,
  createdAt: '2026-12-02T10:00:00.000Z',
  updatedAt: '2026-12-02T10:00:00.000Z',
  since: '2026-12-02T10:00:00.000Z',
  ...over,
})

async function open() {
  const cluster = uniqueName('sch')
  return { cluster, store: await ScheduleStore.open({ nc, cluster, logger: silentLogger() }) }
}

t.test('create once, read, update on the revision read, list, remove', async (t) => {
  const { store } = await open()
  const rev = await store.create(schedule('nightly'))
  await t.rejects(store.create(schedule('nightly')), { code: 'BOSUN_ERR_SCHEDULE_EXISTS' }, 'the id is taken')
  const read = await store.get('nightly')
  t.same(read, { schedule: schedule('nightly'), revision: rev })
  t.equal(await store.get('nope'), undefined)

  const newer = await store.update(schedule('nightly', { paused: true }), rev)
  t.ok(newer > rev)
  await t.rejects(
    store.update(schedule('nightly', { cron: '* * * * *' }), rev),
    { code: 'BOSUN_ERR_SCHEDULE_CHANGED' },
    'an update from an older read is refused',
  )
  t.equal((await store.get('nightly'))!.schedule.paused, true)

  await store.create(schedule('a-first'))
  t.same(
    (await store.list()).map((s) => s.schedule.id),
    ['a-first', 'nightly'],
  )
  await store.markFired('nightly', { lastDue: '2026-12-02T10:00:05.000Z', epoch: 3, recent: [] })
  t.equal(await store.remove('nightly'), true)
  t.equal(await store.remove('nightly'), false, 'gone')
  t.equal(await store.get('nightly'), undefined)
  t.equal(await store.fired('nightly'), undefined, 'its firing state went with it')
  await store.create(schedule('nightly'))
  t.pass('the id can be used again')
})

t.test('fired marks', async (t) => {
  const { store } = await open()
  t.equal(await store.fired('x'), undefined)
  const mark = {
    lastDue: '2026-12-02T10:00:05.000Z',
    epoch: 7,
    recent: [{ due: '2026-12-02T10:00:05.000Z', jobId: '01KB0000000000000000000000-000' }],
  }
  await store.markFired('x', mark)
  t.same(await store.fired('x'), mark)
})

t.test('watch: current definitions first, then changes and deletes', async (t) => {
  const { store } = await open()
  await store.create(schedule('one'))
  const seen: [string, boolean | undefined][] = []
  const stop = await store.watch((id, s) => seen.push([id, s?.paused]))
  t.teardown(stop)
  await waitFor(() => seen.length === 1)
  const rev = (await store.get('one'))!.revision
  await store.update(schedule('one', { paused: true }), rev)
  await store.create(schedule('two'))
  await store.remove('one')
  await waitFor(() => seen.length === 4)
  t.same(seen, [
    ['one', false],
    ['one', true],
    ['two', false],
    ['one', undefined],
  ])
})

t.test('garbage in the bucket is dropped, never returned', async (t) => {
  const { cluster, store } = await open()
  const kv = await new Kvm(nc).open(scheduleBucket(cluster))
  const enc = new TextEncoder()
  await kv.put('def.junk', enc.encode('{"not":"a schedule"'))
  await kv.put('def.wrong', enc.encode(JSON.stringify(schedule('other-id'))))
  await kv.put('def.bad-cron-type', enc.encode(JSON.stringify({ ...schedule('bad-cron-type'), cron: 5 })))
  await kv.put('fired.junk', enc.encode('[]'))
  await store.create(schedule('good'))
  t.same(
    (await store.list()).map((s) => s.schedule.id),
    ['good'],
  )
  t.equal(await store.get('junk'), undefined)
  t.equal(await store.get('wrong'), undefined, 'a record under another id is not that schedule')
  t.equal(await store.fired('junk'), undefined)
})
