/**
 * The key-value buckets behind schedules, limit overrides and rate windows (jobs/kv-bucket.ts) are
 * created by whichever process starts first. Every worker and API opens them at start, so on a fresh
 * cluster several processes create the same bucket at once; nats-server then answers all but one
 * with "subjects overlap with an existing stream" (or "already in use"). Each open must bind to the
 * bucket the winner created — a clean-clone CI run had a worker exit at start on exactly this.
 */
import t from 'tap'
import { jetstreamManager } from '@nats-io/jetstream'
import { LimitsStore } from '../../jobs/limits-store.js'
import { RateLedgerStore } from '../../jobs/rate-ledger-store.js'
import { ScheduleStore } from '../../jobs/schedules/store.js'
import { openKvBucket } from '../../jobs/kv-bucket.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { logger, natsConn } from './store-helpers.js'

const nats = await startNats()
t.teardown(() => nats.close())

/**
 * Processes starting together, each with its own connection as separate processes have, each opening
 * every bucket as a worker does. The server-side race is narrow: on this machine 32 × 150 opens of one
 * bucket meet it in about one run in three, so all three buckets are opened each round.
 */
const PROCESSES = 32
const ROUNDS = 150

t.test(`${PROCESSES} processes opening the buckets of a fresh cluster at once all bind to them`, async (t) => {
  const conns = await Promise.all(Array.from({ length: PROCESSES }, () => natsConn(t, nats.url)))
  const failures: string[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const cluster = uniqueName('kv')
    const opens = conns.flatMap((nc) => {
      const o = { nc, cluster, logger, timeoutMs: 5000 }
      return [ScheduleStore.open(o), LimitsStore.open(o), RateLedgerStore.open(o)]
    })
    for (const r of await Promise.allSettled(opens))
      if (r.status === 'rejected') failures.push((r.reason as Error).message)
  }
  t.same(failures, [], `every open in ${ROUNDS} fresh clusters succeeded`)
})

t.test('a bucket whose subjects another stream owns is still refused, naming the conflict', async (t) => {
  const nc = await natsConn(t, nats.url)
  const cluster = uniqueName('kv')
  // A plain stream that takes the bucket's subjects ($KV.<bucket>.>) under another name.
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: `squatter_${cluster}`, subjects: [`$KV.bosun_${cluster}_limits.>`] })
  await t.rejects(
    openKvBucket(
      nc,
      `bosun_${cluster}_limits`,
      { history: 1 },
      { what: 'cannot open the limits store', timeoutMs: 999 },
    ),
    { code: 'BOSUN_ERR_STORE', message: /cannot open the limits store: .*subjects overlap/ },
  )
})
