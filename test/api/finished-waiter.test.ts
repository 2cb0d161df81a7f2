/**
 * The API's waiter for finished notices on a real nats-server: one message wakes every request
 * waiting on the jobs it names, garbage wakes nobody, a timeout or cancel ends a wait alone; a
 * notice's final record reaches the waiters, a malformed one is dropped and only wakes; a record
 * announced as its write is sent answers only once that write's acknowledgement says stored.
 */
import t, { type Test } from 'tap'
import type { Job } from '../../jobs/model.js'
import { natsEventWaiter } from '../../api/events.js'
import { MSG } from '../../jobs/protocol.js'
import { silentLogger } from '../../runner/logger.js'
import { connectNats } from '../../runner/transport/connect.js'
import { NatsTransport } from '../../runner/transport/nats-transport.js'
import { finalAcksPrefix, finishedJobsSubject, finishingJobsSubject } from '../../runner/transport/subjects.js'
import type { NatsConnection } from '@nats-io/transport-node'
import { startNats, uniqueName } from '../helpers/servers.js'

const logger = silentLogger()

async function pair(t: Test) {
  const nats = await startNats({ jetstream: false })
  t.teardown(() => nats.close())
  const cluster = uniqueName('c')
  const open = async (id: string) => {
    const tr = new NatsTransport({
      nc: await connectNats({ servers: [nats.url] }, { name: id, logger }),
      cluster,
      nodeId: id,
      logger,
    })
    t.teardown(() => tr.close())
    return tr
  }
  const api = await open('api')
  const boss = await open('boss')
  return { api, boss, cluster, waiter: natsEventWaiter(api, cluster, logger) }
}

/** A final record of job `id` as a notice would carry it. */
const record = (id: string, over: Partial<Job> = {}): Job => ({
  id,
  function: 'echo',
  state: 'succeeded',
  attempts: 1,
  maxAttempts: 3,
  payload: 'p',
  priority: 0,
  timeoutMs: 1000,
  createdAt: new Date().toISOString(),
  finishedAt: new Date().toISOString(),
  result: `r-${id}`,
  epoch: 1,
  ...over,
})

t.test('finished-notice waiter', async (t) => {
  const { api, boss, cluster, waiter } = await pair(t)
  const state = new Map<string, string>()
  const watch = (id: string, ms: number) => {
    const w = waiter.waitOnce(id, ms)
    state.set(id, 'waiting')
    void w.promise.then(() => state.set(id, 'woken'))
    return w
  }
  const settle = () => new Promise((r) => setTimeout(r, 150))
  watch('J1', 10_000)
  watch('J2', 10_000)
  const twice = waiter.waitOnce('J2', 10_000) // two requests on one job
  const j3 = watch('J3', 10_000)
  const cancelled = watch('J4', 10_000)
  watch('J5', 100)
  await api.flush()
  const send = (body: unknown, type: string = MSG.finished) => boss.send(finishedJobsSubject(cluster), type, body)

  // Garbage wakes nobody.
  send({ jobs: 'J1' })
  send({ nope: true })
  send({ jobs: [{ id: 'J1' }, { id: 7, state: 'succeeded' }, null] })
  send({ jobs: [{ id: 'J1', state: 'succeeded' }] }, 'something.else')
  await settle()
  t.same([state.get('J1'), state.get('J2'), state.get('J3')], ['waiting', 'waiting', 'waiting'], 'garbage wakes nobody')
  t.equal(state.get('J5'), 'woken', 'a wait ends at its timeout')

  cancelled.cancel()
  await settle()
  t.equal(state.get('J4'), 'woken', 'cancel ends a wait')

  send({
    jobs: [
      { id: 'J1', state: 'succeeded' },
      { id: 'J2', state: 'failed' },
      { id: 'OTHER', state: 'succeeded' },
    ],
  })
  await twice.promise
  await settle()
  t.same(
    [state.get('J1'), state.get('J2'), state.get('J3')],
    ['woken', 'woken', 'waiting'],
    'one message wakes the jobs it names',
  )
  j3.cancel()
})

t.test('a notice carrying final records delivers them; a malformed record only wakes', async (t) => {
  const { api, boss, cluster, waiter } = await pair(t)
  const ids = [
    '01J00000000000000000000001-000',
    '01J00000000000000000000001-001',
    '01J00000000000000000000001-002',
    '01J00000000000000000000001-003',
  ]
  const waits = ids.map((id) => waiter.waitOnce(id, 10_000))
  await api.flush()
  boss.send(finishedJobsSubject(cluster), MSG.finished, {
    jobs: [
      { id: ids[0], state: 'succeeded', job: record(ids[0]!) },
      { id: ids[1], state: 'succeeded', job: record(ids[0]!) }, // another job's record
      { id: ids[2], state: 'running', job: record(ids[2]!, { state: 'running' }) }, // not final
      { id: ids[3], state: 'succeeded', job: { id: ids[3], nonsense: true } },
    ],
  })
  const delivered = await Promise.all(waits.map((w) => w.promise))
  t.equal(delivered[0]?.result, `r-${ids[0]}`, 'the record reaches its waiter')
  t.same(delivered.slice(1), [undefined, undefined, undefined], 'malformed records are dropped: a wake-up only')
})

t.test(
  'an announced record answers its waiter once its write is acknowledged as stored on its own subject',
  async (t) => {
    const { api, boss, cluster, waiter } = await pair(t)
    const ids = ['01J00000000000000000000002-000', '01J00000000000000000000002-001', '01J00000000000000000000002-002']
    const woken = new Map<string, Job | undefined>()
    const waits = ids.map((id) => {
      const w = waiter.waitOnce(id, 10_000)
      void w.promise.then((job) => woken.set(id, job))
      return w
    })
    await api.flush()
    const announcedRecord = (id: string) => record(id, { result: `announced-${id}` })
    const ack = (n: number) => `${finalAcksPrefix(cluster, 'boss1')}${n}`
    const announce = (id: string, n: number) =>
      boss.send(finishingJobsSubject(cluster), MSG.finished, {
        jobs: [{ id, state: 'succeeded', job: announcedRecord(id), ack: ack(n) }],
      })
    const nc = (boss as unknown as { nc: NatsConnection }).nc
    const reply = (n: number, body: unknown) => nc.publish(ack(n), JSON.stringify(body))
    const settle = () => new Promise((r) => setTimeout(r, 150))

    // Job 0: record first, then a stored acknowledgement. Job 1: the acknowledgement first.
    announce(ids[0]!, 1)
    reply(2, { stream: 'DONE', seq: 9 })
    await settle()
    t.notOk(woken.has(ids[0]!), 'a record without its acknowledgement is not an answer')
    reply(1, { stream: 'DONE', seq: 8 })
    announce(ids[1]!, 2)
    // Job 2: refused (another final of its run stands): no answer from the announcement.
    announce(ids[2]!, 3)
    reply(3, { error: { code: 400, err_code: 10071, description: 'wrong last sequence: 4' } })
    reply(4, 'not json')
    await settle()
    t.equal(woken.get(ids[0]!)?.result, `announced-${ids[0]}`, 'record, then acknowledgement: answered')
    t.equal(woken.get(ids[1]!)?.result, `announced-${ids[1]}`, 'acknowledgement, then record: answered')
    t.notOk(woken.has(ids[2]!), 'a refused write answers nobody')
    // The boss's finished notice still answers the refused one, with the record that stands.
    boss.send(finishedJobsSubject(cluster), MSG.finished, {
      jobs: [{ id: ids[2], state: 'succeeded', job: record(ids[2]!, { result: 'the first final' }) }],
    })
    const all = await Promise.all(waits.map((w) => w.promise))
    t.equal(all[2]?.result, 'the first final', 'the finished notice answers it')
  },
)
