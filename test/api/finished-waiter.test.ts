/**
 * The API's waiter for finished notices on a real nats-server: one message wakes every request
 * waiting on the jobs it names, garbage wakes nobody, a timeout or cancel ends a wait alone.
 */
import t from 'tap'
import { natsEventWaiter } from '../../api/events.js'
import { MSG } from '../../jobs/protocol.js'
import { silentLogger } from '../../runner/logger.js'
import { connectNats } from '../../runner/transport/connect.js'
import { NatsTransport } from '../../runner/transport/nats-transport.js'
import { finishedJobsSubject } from '../../runner/transport/subjects.js'
import { startNats, uniqueName } from '../helpers/servers.js'

const logger = silentLogger()

t.test('finished-notice waiter', async (t) => {
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
  const waiter = natsEventWaiter(api, cluster, logger)
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
