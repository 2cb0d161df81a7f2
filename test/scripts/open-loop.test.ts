/**
 * The benchmarks' open-loop schedule (bench/lib/open-loop.ts): a latency is never shorter than the
 * request itself took, even when the request went out before its due time (it used to be timed from
 * the due time: a Redis PING measured 0.001 ms), and a request sent late is timed from its due time.
 */
import t from 'tap'
import { openLoop, schedule } from '../../bench/lib/open-loop.js'

t.test('a request sent before its due time is timed from its send', async (t) => {
  // 2,000/s: every wait is under the 1 ms the schedule sleeps for, so requests go out early.
  const took = new Map<number, number>()
  const recorded: { us: number; index: number }[] = []
  await openLoop(
    schedule(2000, 0.09, 0.01), // 20 warm-up requests, then 180
    async (index) => {
      const start = performance.now()
      await new Promise((r) => setImmediate(r))
      took.set(index, performance.now() - start)
      return index
    },
    (us, answer, isRecorded) => {
      if (isRecorded && answer.ok) recorded.push({ us, index: answer.value })
    },
  )
  t.equal(recorded.length, 180, 'the warm-up is not recorded')
  const short = recorded.filter((r) => r.us + 1 < took.get(r.index)! * 1000)
  t.same(short, [], 'no latency is shorter than its request took')
})

t.test('a request sent late is timed from its due time, failures included', async (t) => {
  const latencies: number[] = []
  let started = false
  const lag = await openLoop(
    { ratePerSec: 1000, total: 10, warm: 2, onRecordStart: () => (started = true) },
    async (index) => {
      if (index === 4) {
        const until = performance.now() + 30
        while (performance.now() < until); // the sender stalls: requests 5.. go out late
      }
      if (index === 6) throw new Error('refused')
      await Promise.resolve()
    },
    (us, answer, isRecorded) => {
      if (isRecorded) latencies.push(answer.ok ? us : -us)
    },
  )
  t.ok(started, 'onRecordStart ran')
  t.ok(lag.maxSendLagMs >= 25, `the stall shows as send lag (${lag.maxSendLagMs} ms)`)
  t.ok(
    latencies.filter((us) => Math.abs(us) >= 20_000).length >= 3,
    `late sends count their lag (${latencies.join(', ')})`,
  )
  t.equal(latencies.filter((us) => us < 0).length, 1, 'the failed request is answered too')
})
