/**
 * The floor under the latency rows: one round trip through each side's broker, from the bench
 * process, at the latency step's open-loop rate. bosun: a NATS request to a subscriber in another
 * process that answers at once (bench → nats-server → echo process → nats-server → bench), the
 * shortest leg any bosun message takes between two processes. BullMQ: a Redis PING (bench →
 * redis-server → bench), the shortest leg of its path. A `?wait` request needs several such legs on
 * either side (README "Benchmarks", "Where `?wait` latency goes"), so the ratio of the two floors bounds
 * how far apart the latency rows can be without changing how many legs bosun's path has.
 */
import { connect } from '@nats-io/transport-node'
import { Redis } from 'ioredis'
import { spawnLineChild } from '../lib/line-child.js'
import { latencyHistogram, openLoop, schedule } from '../lib/open-loop.js'
import { CHILD_SCRIPT } from './child.js'

export interface FloorResult {
  requests: number
  failures: number
  p50Ms: number
  p99Ms: number
}

/** One side's probe: `roundTrip()` resolves once the broker answered. */
export interface RoundTripProbe {
  roundTrip(): Promise<unknown>
  close(): Promise<void>
}

/** The subject the echo process answers on. */
const ECHO_SUBJECT = 'bench.compare.echo'

/** NATS request/reply to an echo subscriber in another process (child.ts, role `echo`). */
export async function natsRoundTripProbe(natsUrl: string): Promise<RoundTripProbe> {
  const echo = spawnLineChild('nats-echo', CHILD_SCRIPT, {
    BENCH_COMPARE_ROLE: 'echo',
    NATS_URL: natsUrl,
    SUBJECT: ECHO_SUBJECT,
  })
  try {
    await echo.next((e) => e.ev === 'ready', 30_000)
  } catch (err) {
    await echo.kill()
    throw err
  }
  const nc = await connect({ servers: natsUrl.split(','), name: 'bench-compare-floor' })
  const body = new Uint8Array(100)
  return {
    roundTrip: () => nc.request(ECHO_SUBJECT, body, { timeout: 5000 }),
    async close() {
      await nc.close()
      await echo.kill()
    },
  }
}

/** A Redis PING on the side's redis-server. */
export function redisRoundTripProbe(port: number): RoundTripProbe {
  const redis = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 })
  return {
    roundTrip: () => redis.ping(),
    close() {
      redis.disconnect()
      return Promise.resolve()
    },
  }
}

/** Offer `ratePerSec` round trips for `seconds` after `warmupSeconds` unrecorded (bench/lib/open-loop.ts). */
export async function measureFloor(
  probe: RoundTripProbe,
  ratePerSec: number,
  seconds: number,
  warmupSeconds = 1,
): Promise<FloorResult> {
  const histogram = latencyHistogram()
  const o = schedule(ratePerSec, seconds, warmupSeconds)
  let failures = 0
  try {
    await openLoop(
      o,
      () => probe.roundTrip(),
      (us, answer, recorded) => {
        if (!recorded) return
        if (answer.ok) histogram.recordValue(us)
        else failures++
      },
    )
    const ms = (p: number) => histogram.getValueAtPercentile(p) / 1000
    return { requests: o.total - o.warm, failures, p50Ms: ms(50), p99Ms: ms(99) }
  } finally {
    histogram.destroy()
  }
}
