/**
 * StreamFollower's pull requests (jobs/streams/consumer-pull.ts) against a real nats-server 2.9.10:
 * that server ends some pull requests without their `408 Request Timeout` (a message meeting the
 * request in the moment of its expiry; nats-server commit df282a221, fixed in 2.9.16). Here a proxy
 * drops every 408 on its way to the follower — the defect at its worst — while a message is stored
 * every 100 ms: no message may wait for a recovery (≥ 1 s). With nats.js's consume() (pulls expiring
 * every second) the follower counted each silently ended request as open and stalled until two
 * heartbeats were missed (worst delay 1,044 ms here); consumer-pull.ts's requests never expire.
 * (A consumer that vanishes or goes quiet: test/jobs/follow-silent.test.ts.)
 */
import t from 'tap'
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream'
import { StreamFollower } from '../../jobs/streams/follow.js'
import { captureLogger } from '../executor/helpers.js'
import { startNatsHoldProxy } from '../helpers/nats-proxy.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { natsConn } from './store-helpers.js'

const nats = await startNats()
t.teardown(() => nats.close())

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const decode = (d: Uint8Array) => Number(new TextDecoder().decode(d))

t.test('pull requests that end without their 408 do not stall the follow', async (t) => {
  const proxy = await startNatsHoldProxy(nats.url)
  t.teardown(() => proxy.close())
  const direct = await natsConn(t, nats.url)
  const viaProxy = await natsConn(t, proxy.url)
  const jsm = await jetstreamManager(direct)
  const name = uniqueName('drop408')
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File, num_replicas: 1 })
  proxy.dropToClient((_subject, headers) => headers.startsWith('NATS/1.0 408'))

  const received = new Map<number, number>()
  const order: number[] = []
  const follower = new StreamFollower({
    js: jetstream(viaProxy),
    jsm: await jetstreamManager(viaProxy),
    stream: name,
    filter: `${name}.>`,
    log: captureLogger().logger,
    onMessage: (m) => {
      order.push(decode(m.data))
      received.set(decode(m.data), performance.now())
    },
    onInitialDone: () => undefined,
  })
  t.teardown(() => follower.stop())

  const js = jetstream(direct)
  const stored = new Map<number, number>()
  const count = 100 // 10 s: ten lifetimes of the 1 s pull requests nats.js's consume() was given
  for (let i = 1; i <= count; i++) {
    await js.publish(`${name}.x`, String(i))
    stored.set(i, performance.now())
    await sleep(100)
  }
  await waitFor(() => received.size === count, { what: 'every message', timeoutMs: 30_000 })
  // nats.js's consume() used pull requests that expired every second (the proxy dropped 5 of their
  // 408s in 10 s); consumer-pull.ts's never expire, so there is none to lose.
  t.comment(`408s dropped by the proxy: ${proxy.droppedToClient}`)
  const delays = [...stored].map(([i, at]) => received.get(i)! - at)
  const worst = Math.max(...delays)
  t.comment(`worst delay from stored to delivered: ${worst.toFixed(1)} ms`)
  // A follow that waited for missed heartbeats would show ≥ 1,000 ms here.
  t.ok(worst < 600, `no message waited for a lost request to be noticed (worst ${worst.toFixed(1)} ms)`)
  t.same(
    order,
    [...Array(count).keys()].map((i) => i + 1),
    'each message once, in order',
  )
})
