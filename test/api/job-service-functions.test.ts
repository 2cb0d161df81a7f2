/**
 * Which functions the API accepts: those a live *worker* advertises (the 'worker' service). The boss
 * runs no jobs, so a function only the boss's node announces is unknown: 404, for a batch naming the
 * item's index. ClusterJobService on fakes (test/api/cluster-service-fakes.ts) behind the HTTP layer.
 */
import t, { type Test } from 'tap'
import { buildApp } from '../../api/app.js'
import { WORKER_SERVICE } from '../../jobs/protocol.js'
import { silentLogger } from '../../runner/logger.js'
import { clusterService, entry } from './cluster-service-fakes.js'
import { errorShape } from './helpers.js'
import { FakeClusterEvents } from './fake-events.js'

async function app(t: Test) {
  const fakes = clusterService()
  const built = buildApp({ service: fakes.service, events: new FakeClusterEvents(), logger: silentLogger() })
  t.teardown(() => built.close())
  await built.ready()
  return { ...fakes, app: built }
}

t.test('a function only the boss node advertises is unknown: 404', async (t) => {
  const { app: a } = await app(t)
  const res = await a.inject({ method: 'POST', url: '/jobs', payload: { function: 'boss-only' } })
  t.equal(res.statusCode, 404, res.body)
  t.equal(errorShape(res).code, 'BOSUN_ERR_UNKNOWN_FUNCTION')
  const ok = await a.inject({ method: 'POST', url: '/jobs', payload: { function: 'echo' } })
  t.equal(ok.statusCode, 202, 'a function a worker advertises is accepted')
})

t.test('batch: the first item no worker can run is named by its index', async (t) => {
  const { app: a, store } = await app(t)
  const payload = { jobs: [{ function: 'echo' }, { function: 'boss-only' }, { function: 'nowhere' }] }
  const res = await a.inject({ method: 'POST', url: '/jobs/batch', payload })
  t.equal(res.statusCode, 404, res.body)
  const body = errorShape(res)
  t.equal(body.code, 'BOSUN_ERR_UNKNOWN_FUNCTION')
  t.same(body.details, { index: 1 })
  t.match(body.message, /jobs\[1\]/)
  t.equal(store.jobs.size, 0, 'nothing stored')
})

t.test('a worker that registers later makes the function known', async (t) => {
  const { app: a, registry } = await app(t)
  t.equal((await a.inject({ method: 'POST', url: '/jobs', payload: { function: 'boss-only' } })).statusCode, 404)
  registry.services.set(WORKER_SERVICE, [entry('worker-1', ['echo']), entry('worker-2', ['boss-only'])])
  t.equal((await a.inject({ method: 'POST', url: '/jobs', payload: { function: 'boss-only' } })).statusCode, 202)
})
