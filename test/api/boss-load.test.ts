/**
 * The API's view of the boss's load reports (api/backpressure.ts): what GET /cluster/stats and the
 * queue limit read. Reports are parsed by jobs/protocol.ts before they get here.
 */
import t from 'tap'
import { Backpressure } from '../../api/backpressure.js'
import { parseBossStatusReply, type BossStatusReply } from '../../jobs/protocol.js'

const report = (over: Partial<BossStatusReply>): BossStatusReply => ({
  epoch: 3,
  since: '2026-12-02T09:00:00.000Z',
  queued: 0,
  running: 0,
  finished: 0,
  workers: {},
  ...over,
})

t.test('the last report is kept with the time it arrived', async (t) => {
  const b = new Backpressure(0)
  t.equal(b.latest(), undefined, 'nothing before the first report')
  const before = Date.now()
  b.observe(report({ queued: 5, running: 2, finished: 40 }))
  const l = b.latest()!
  t.match(l, { epoch: 3, since: '2026-12-02T09:00:00.000Z', queued: 5, running: 2, finished: 40 })
  t.ok(Date.parse(l.at) >= before && Date.parse(l.at) <= Date.now(), 'at is when it arrived')
  t.notOk('workers' in l, 'per-worker counts are not kept')
})

t.test("a deposed boss's late report does not overwrite its successor's", async (t) => {
  const b = new Backpressure(0)
  b.observe(report({ epoch: 4, queued: 1, finished: 2 }))
  b.observe(report({ epoch: 3, queued: 900, finished: 9000 }))
  t.match(b.latest(), { epoch: 4, queued: 1, finished: 2 })
  b.observe(report({ epoch: 5, queued: 0, finished: 0 }))
  t.match(b.latest(), { epoch: 5, finished: 0 }, 'a newer term replaces it')
})

t.test('the queue limit reads the last report', async (t) => {
  const b = new Backpressure(10)
  b.observe(report({ queued: 9 }))
  b.admit(1)
  t.throws(() => b.admit(1), { code: 'BOSUN_ERR_QUEUE_FULL' }, 'queued + accepted since the report > limit')
  b.observe(report({ queued: 0 }))
  b.admit(10)
  t.pass('a new report resets what was accepted since')
})

t.test('a load report without `finished` (an older boss) reads as 0; a bad one is refused', async (t) => {
  const old = { epoch: 2, since: 'x', queued: 1, running: 1, workers: { w1: 1 } }
  t.equal(parseBossStatusReply(old).finished, 0)
  t.equal(parseBossStatusReply({ ...old, finished: 17 }).finished, 17)
  for (const finished of [-1, 1.5, '3', null, Number.NaN]) {
    t.throws(() => parseBossStatusReply({ ...old, finished }), { code: 'BOSUN_ERR_BAD_MESSAGE' }, String(finished))
  }
})
