/** GET /cluster, GET /healthz (liveness) and GET /readyz (readiness). */
import t from 'tap'
import { errors } from '../../runner/errors.js'
import { errorShape, makeApp } from './helpers.js'

t.test('GET /cluster: the boss and the workers', async (t) => {
  const { inject, service } = await makeApp(t)
  const res = await inject({ method: 'GET', url: '/cluster' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), service.clusterView)

  service.clusterView = { boss: null, workers: [] }
  const none = await inject({ method: 'GET', url: '/cluster' })
  t.equal(none.statusCode, 200)
  t.same(none.json(), { boss: null, workers: [] }, 'no boss is a state, not an error')

  service.failWith = errors.ZK_NOT_CONNECTED()
  const down = await inject({ method: 'GET', url: '/cluster' })
  t.equal(down.statusCode, 503)
  t.equal(errorShape(down).code, errors.ZK_NOT_CONNECTED.code)
  t.ok(down.headers['retry-after'])
})

t.test("GET /cluster/stats: the boss's last load report, zeros and nulls before the first", async (t) => {
  const { inject, service } = await makeApp(t)
  const none = await inject({ method: 'GET', url: '/cluster/stats' })
  t.equal(none.statusCode, 200)
  t.same(none.json(), { at: null, epoch: null, since: null, queued: 0, running: 0, finished: 0 })

  service.loadView = {
    at: '2026-12-02T10:00:01.000Z',
    epoch: 7,
    since: '2026-12-02T09:59:00.000Z',
    queued: 12,
    running: 3,
    finished: 4501,
  }
  const res = await inject({ method: 'GET', url: '/cluster/stats' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), service.loadView)
})

t.test('GET /healthz is 200 whatever the connections', async (t) => {
  const { inject, service } = await makeApp(t)
  service.healthState = { zk: false, nats: false }
  service.failWith = errors.UNAVAILABLE()
  const res = await inject({ method: 'GET', url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
})

t.test('GET /readyz: 200 when ZooKeeper and NATS are up, else 503 naming what is down', async (t) => {
  const { inject, service } = await makeApp(t)
  const ok = await inject({ method: 'GET', url: '/readyz' })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { status: 'ready', zk: true, nats: true })

  const cases = [
    [{ zk: false, nats: true }, /ZooKeeper not connected/],
    [{ zk: true, nats: false }, /NATS not connected/],
    [{ zk: false, nats: false }, /ZooKeeper and NATS not connected/],
  ] as const
  for (const [health, message] of cases) {
    service.healthState = { ...health }
    const res = await inject({ method: 'GET', url: '/readyz' })
    t.equal(res.statusCode, 503, JSON.stringify(health))
    const err = errorShape(res)
    t.equal(err.code, errors.UNAVAILABLE.code)
    t.match(err.message, message)
    t.same(err.details, health)
  }

  service.health = () => {
    throw new Error('health exploded')
  }
  const thrown = await inject({ method: 'GET', url: '/readyz' })
  t.equal(thrown.statusCode, 503, 'a throwing health check is "not ready", not a 500')
  t.same(errorShape(thrown).details, { zk: false, nats: false })
})
