/**
 * The metrics module (runner/metrics/): bounded label values, the worker's metric names and labels,
 * histogram buckets, leader changes counted once per epoch, and the scrape-time gauges.
 */
import t from 'tap'
import { monotonicFactory } from 'ulid'
import { BoundedLabel, MAX_FUNCTION_LABELS, OTHER } from '../../runner/metrics/bounded-label.js'
import { BUCKETS } from '../../runner/metrics/process-metrics.js'
import { ApiMetrics } from '../../runner/metrics/api-metrics.js'
import { WorkerMetrics } from '../../runner/metrics/worker-metrics.js'

function sample(text: string, name: string, labels = ''): number | undefined {
  const prefix = labels === '' ? `${name} ` : `${name}{${labels}} `
  const line = text.split('\n').find((l) => l.startsWith(prefix))
  return line === undefined ? undefined : Number(line.slice(prefix.length))
}

t.test('BoundedLabel: allow-list, cap, and `other`', async (t) => {
  const allowed = new BoundedLabel({ max: 10, allowed: ['echo', 'sleep'] })
  t.equal(allowed.value('echo'), 'echo')
  t.equal(allowed.value('nope'), OTHER, 'not allowed → other')
  t.equal(allowed.size, 1)
  const capped = new BoundedLabel({ max: 3 })
  t.same(
    ['a', 'b', 'c', 'd', 'a', 'e', 'c'].map((v) => capped.value(v)),
    ['a', 'b', 'c', OTHER, 'a', OTHER, 'c'],
    'past the cap only the kept values stay',
  )
  t.equal(capped.size, 3)
  t.equal(new BoundedLabel({ max: 5 }).value(OTHER), OTHER, '`other` is never a kept value')
  t.throws(() => new BoundedLabel({ max: -1 }), RangeError)
})

t.test('function labels fold past 200 distinct names (API submits)', async (t) => {
  const m = new ApiMetrics({ defaultMetrics: false })
  for (let i = 0; i < MAX_FUNCTION_LABELS + 50; i++) m.submitted(`fn-${i}`)
  m.submitted('fn-0', 2)
  const text = await m.text()
  const series = text.split('\n').filter((l) => l.startsWith('bosun_jobs_submitted_total{'))
  t.equal(series.length, MAX_FUNCTION_LABELS + 1, '200 names and other')
  t.equal(sample(text, 'bosun_jobs_submitted_total', 'function="fn-0"'), 3)
  t.equal(sample(text, 'bosun_jobs_submitted_total', 'function="other"'), 50)
})

t.test('worker: attempts per function and outcome, durations, queue wait from the job id', async (t) => {
  const m = new WorkerMetrics({ functions: ['echo', 'sleep'], defaultMetrics: false })
  const batch = monotonicFactory()(Date.now() - 2500)
  m.attemptStarted('echo', `${batch}-0`, 1)
  m.attemptStarted('echo', `${batch}-1`, 2) // a retry: its wait is not the queue's
  m.attemptStarted('echo', 'J00000001', 1) // no ULID: nothing to measure from
  m.attemptFinished('echo', 'succeeded', 0.02)
  m.attemptFinished('echo', 'timeout', 7)
  m.attemptFinished('sleep', 'handed_back', 1)
  m.attemptFinished('unknown-fn', 'failed', 0.5)
  const text = await m.text()
  t.equal(sample(text, 'bosun_jobs_finished_total', 'function="echo",state="succeeded"'), 1)
  t.equal(sample(text, 'bosun_jobs_finished_total', 'function="echo",state="timeout"'), 1)
  t.equal(sample(text, 'bosun_jobs_finished_total', 'function="sleep",state="handed_back"'), 1)
  t.equal(sample(text, 'bosun_jobs_finished_total', 'function="other",state="failed"'), 1, 'not ours → other')
  t.equal(sample(text, 'bosun_job_duration_seconds_count', 'function="echo"'), 2)
  t.equal(sample(text, 'bosun_job_duration_seconds_sum', 'function="echo"'), 7.02)
  t.equal(sample(text, 'bosun_job_duration_seconds_bucket', 'le="0.025",function="echo"'), 1)
  t.equal(sample(text, 'bosun_job_queue_wait_seconds_count', 'function="echo"'), 1, 'first attempts with a ULID')
  t.equal(sample(text, 'bosun_job_queue_wait_seconds_bucket', 'le="1",function="echo"'), 0)
  t.equal(sample(text, 'bosun_job_queue_wait_seconds_bucket', 'le="5",function="echo"'), 1, 'about 2.5 s')
  t.notMatch(text, /J00000001|-0"/, 'no job ids')
})

t.test('API: leader changes once per new term with how the last one ended, and failover gaps', async (t) => {
  const api = new ApiMetrics({ defaultMetrics: false })
  const l = api.leadership
  l.termSeen(4)
  l.termStarted(4, 'crashed', 1) // the term found at start: no change
  l.termStarted(5, 'crashed', 1.5)
  l.termStarted(5, 'crashed', 1.5) // the same term seen twice
  l.termStarted(3, 'sigterm', 0.1) // an older one seen late
  l.termStarted(6, 'sigterm', -1) // a negative gap is dropped
  l.termStarted(7, 'fenced', undefined)
  for (let i = 0; i < 20; i++) l.termStarted(8 + i, `r${i}`, undefined)
  const text = await api.text()
  t.equal(sample(text, 'bosun_leader_changes_total', 'reason="crashed"'), 1)
  t.equal(sample(text, 'bosun_leader_changes_total', 'reason="sigterm"'), 1)
  t.equal(sample(text, 'bosun_leader_changes_total', 'reason="fenced"'), 1)
  t.equal(sample(text, 'bosun_leader_changes_total', 'reason="other"'), 7, 'reasons past 16 fold')
  t.equal(sample(text, 'bosun_failover_gap_seconds_count'), 1)
  t.equal(sample(text, 'bosun_failover_gap_seconds_bucket', 'le="1"'), 0)
  t.equal(sample(text, 'bosun_failover_gap_seconds_bucket', 'le="2"'), 1)
})

t.test('worker: redispatches, fenced writes', async (t) => {
  const m = new WorkerMetrics({ functions: [], defaultMetrics: false })
  m.redispatched('worker_died', 3)
  m.redispatched('worker_unreachable', 0)
  m.fencedWrite('store')
  m.fencedWrite('dispatch')
  m.fencedWrite('dispatch')
  const text = await m.text()
  t.equal(sample(text, 'bosun_redispatched_jobs_total', 'reason="worker_died"'), 3)
  t.equal(sample(text, 'bosun_redispatched_jobs_total', 'reason="worker_unreachable"'), undefined)
  t.equal(sample(text, 'bosun_fenced_writes_total', 'target="store"'), 1)
  t.equal(sample(text, 'bosun_fenced_writes_total', 'target="dispatch"'), 2)
})

t.test('worker: state gauges and connections read at scrape time', async (t) => {
  let boss = false
  let zkRtt: number | undefined
  const m = new WorkerMetrics({
    functions: ['echo'],
    defaultMetrics: false,
    connections: {
      zkConnected: () => true,
      natsConnected: () => !boss,
      zkRoundTripMs: () => zkRtt,
      natsRoundTripMs: () => Promise.resolve(3),
    },
  })
  m.track({ isBoss: () => boss, bossEpoch: () => (boss ? 9 : 8), running: () => 2, waiting: () => 3 })
  m.bossLoad({ queued: 17 })
  let text = await m.text()
  t.equal(sample(text, 'bosun_is_boss'), 0)
  t.equal(sample(text, 'bosun_boss_epoch'), 8)
  t.equal(sample(text, 'bosun_jobs_running'), 2)
  t.equal(sample(text, 'bosun_jobs_waiting'), 3)
  t.equal(sample(text, 'bosun_jobs_queued'), 0, 'not the boss: 0')
  t.equal(sample(text, 'bosun_zookeeper_connected'), 1)
  t.equal(sample(text, 'bosun_nats_connected'), 1)
  t.equal(sample(text, 'bosun_nats_rtt_seconds'), 0.003)
  t.match(text, /^bosun_zookeeper_rtt_seconds nan$/im, 'no ZooKeeper round trip yet')
  boss = true
  zkRtt = 12
  text = await m.text()
  t.equal(sample(text, 'bosun_is_boss'), 1)
  t.equal(sample(text, 'bosun_boss_epoch'), 9)
  t.equal(sample(text, 'bosun_jobs_queued'), 17)
  t.equal(sample(text, 'bosun_nats_connected'), 0)
  t.match(text, /^bosun_nats_rtt_seconds nan$/im, 'disconnected: no round trip')
  t.equal(sample(text, 'bosun_zookeeper_rtt_seconds'), 0.012)
})

t.test('histogram buckets are increasing and in seconds', async (t) => {
  for (const [name, buckets] of Object.entries(BUCKETS)) {
    t.ok(
      buckets.every((b, i) => b > 0 && (i === 0 || b > buckets[i - 1]!)),
      `${name}: ${buckets.join(',')}`,
    )
    t.ok(buckets[buckets.length - 1]! >= 30, `${name} reaches past the longest usual value`)
  }
  t.equal(BUCKETS.failoverGap.includes(2) && BUCKETS.failoverGap.includes(5), true, 'gaps around a session timeout')
})
