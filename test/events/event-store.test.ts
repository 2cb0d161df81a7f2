/**
 * Cluster events on a real JetStream: the publisher creates the stream and stores what `emit`
 * queued, in order; the API's reader pages them newest first (every event once, with a type filter,
 * with `since`), drops garbage on the stream, follows live from a `Last-Event-ID`, and events emitted
 * while NATS is down are stored once it is back (kill -9 and restart of nats-server), and an event
 * emitted in the moment the publisher's queue ran empty is stored too.
 */
import t from 'tap'
import { jetstream, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { StreamClusterEvents } from '../../api/cluster-events.js'
import { eventStreamName, eventSubject, type ClusterEvent } from '../../runner/events/model.js'
import { ClusterEventPublisher } from '../../runner/events/publisher.js'
import { silentLogger } from '../../runner/logger.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'

const source = { id: 'w-test', host: 'h', pid: 42, role: 'worker' }

async function setup(t: { teardown(fn: () => unknown): void }) {
  const nats = await startNats()
  t.teardown(() => nats.close())
  const nc = await connect({ servers: nats.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 })
  t.teardown(() => nc.close())
  const cluster = uniqueName('c')
  const publisher = new ClusterEventPublisher({
    nc,
    cluster,
    source,
    retentionMs: 3600_000,
    createWithReplicas: 1,
    logger: silentLogger(),
  })
  t.teardown(() => publisher.close(100))
  const reader = new StreamClusterEvents(jetstream(nc), await jetstreamManager(nc), cluster, silentLogger())
  return { nats, nc, cluster, publisher, reader }
}

async function stored(reader: StreamClusterEvents, n: number): Promise<ClusterEvent[]> {
  let all: ClusterEvent[] = []
  await waitFor(async () => {
    all = []
    let cursor: string | undefined
    do {
      const page = await reader.list({ limit: 1000, ...(cursor ? { cursor } : {}) })
      all.push(...page.events)
      cursor = page.next
    } while (cursor)
    return all.length >= n || undefined
  })
  return all
}

t.test('pages walk every event once, newest first; type and since filter', async (t) => {
  const { publisher, reader } = await setup(t)
  t.same(await reader.list({ limit: 10 }), { events: [] }, 'no stream yet: no events')
  for (let i = 0; i < 700; i++) {
    if (i % 100 === 0)
      publisher.emit('boss.elected', { boss: { id: `b${i}`, host: 'h', pid: 1 }, sessionTimeoutMs: 2000 }, i / 100 + 1)
    else publisher.emit('worker.joined', { worker: `w${i}` })
  }
  const all = await stored(reader, 700)
  t.equal(all.length, 700)
  t.same(
    all.map((e) => Number(e.id)),
    Array.from({ length: 700 }, (_, i) => 700 - i),
    'newest first, every event exactly once',
  )
  t.match(all[699], { type: 'boss.elected', epoch: 1, source, data: { boss: { id: 'b0' } } })

  const pages: string[][] = []
  let cursor: string | undefined
  do {
    const page = await reader.list({ limit: 3, type: 'boss.elected', ...(cursor ? { cursor } : {}) })
    pages.push(page.events.map((e) => String(e.epoch)))
    cursor = page.next
  } while (cursor)
  t.same(pages.flat(), ['7', '6', '5', '4', '3', '2', '1'], 'a type filter across windows')

  const mid = all[350]!.at
  const since = await reader.list({ limit: 1000, since: mid })
  t.ok(since.events.length >= 350 && since.events.every((e) => e.at >= mid), 'since: only events at or after it')
  await t.rejects(reader.list({ limit: 5, cursor: 'abc' }), { code: 'BOSUN_ERR_VALIDATION' })
})

t.test('garbage on the events subject is dropped, not served', async (t) => {
  const { nc, cluster, publisher, reader } = await setup(t)
  publisher.emit('worker.joined', { worker: 'a' })
  await stored(reader, 1)
  const js = jetstream(nc)
  await js.publish(eventSubject(cluster, 'worker.left'), new TextEncoder().encode('{"not":"an event"'))
  await js.publish(eventSubject(cluster, 'worker.left'), new TextEncoder().encode('{"type":"worker.left"}'))
  publisher.emit('worker.left', { worker: 'a', reason: 'gone' })
  const jsm = await jetstreamManager(nc)
  await waitFor(async () => (await jsm.streams.info(eventStreamName(cluster))).state.messages === 4 || undefined)
  const page = await reader.list({ limit: 10 })
  t.same(
    page.events.map((e) => e.type),
    ['worker.left', 'worker.joined'],
    'the two garbage messages are skipped',
  )
})

t.test('follow resumes after a Last-Event-ID and delivers new events live', async (t) => {
  const { publisher, reader } = await setup(t)
  for (let i = 0; i < 5; i++) publisher.emit('worker.joined', { worker: `w${i}` })
  await stored(reader, 5)
  const seen: string[] = []
  const follow = reader.follow(3, (e) => seen.push(e.id))
  t.teardown(() => follow.stop())
  await waitFor(() => seen.length === 2 || undefined, { timeoutMs: 10_000 })
  publisher.emit('worker.left', { worker: 'w0', reason: 'gone' })
  await waitFor(() => seen.length === 3 || undefined, { timeoutMs: 10_000 })
  t.same(seen, ['4', '5', '6'])
  const fresh: string[] = []
  const live = reader.follow(undefined, (e) => fresh.push(e.id))
  t.teardown(() => live.stop())
  await new Promise((r) => setTimeout(r, 300))
  publisher.emit('worker.left', { worker: 'w1', reason: 'gone' })
  await waitFor(() => fresh.length === 1 || undefined, { timeoutMs: 10_000 })
  t.same(fresh, ['7'], 'without an id: only events after the follow started')
})

t.test('events emitted while nats-server is down are stored once it is back', async (t) => {
  const { nats, publisher, reader } = await setup(t)
  publisher.emit('worker.joined', { worker: 'before' })
  await stored(reader, 1)
  await nats.server.kill()
  publisher.emit('connection.lost', { server: 'nats' })
  publisher.emit('connection.restored', { server: 'nats', downMs: 1 })
  await new Promise((r) => setTimeout(r, 500))
  await nats.server.start()
  const all = await stored(reader, 3)
  t.same(
    all.map((e) => e.type),
    ['connection.restored', 'connection.lost', 'worker.joined'],
    'in the order they were emitted',
  )
})

t.test('an event emitted in any microtask after the queue ran empty is stored, not left queued', async (t) => {
  const { publisher, reader } = await setup(t)
  // A worker-left event is emitted from a promise continuation (worker/worker-events.ts): it can land
  // between the publisher's last store and the moment it notes it stopped (a job.redispatched store
  // and the worker's probe answered in one read from the socket). Emit one at every depth there.
  const js = (publisher as unknown as { js: { publish: (...a: unknown[]) => Promise<unknown> } }).js
  const publish = js.publish.bind(js)
  let emitAtDepth: number | undefined
  js.publish = (...a: unknown[]) =>
    publish(...a).then((ack) => {
      const depth = emitAtDepth
      emitAtDepth = undefined
      if (depth !== undefined) {
        let p = Promise.resolve()
        for (let i = 0; i < depth; i++) p = p.then(() => undefined)
        void p.then(() => publisher.emit('worker.left', { worker: `late-${depth}`, reason: 'exited' }))
      }
      return ack
    })
  const DEPTHS = 8
  for (let depth = 0; depth < DEPTHS; depth++) {
    emitAtDepth = depth
    publisher.emit('worker.joined', { worker: `w${depth}` })
    await stored(reader, 2 * depth + 1)
    const all = await waitFor(
      async () => {
        const { events } = await reader.list({ limit: 1000, type: 'worker.left' })
        return events.some((e) => e.data.worker === `late-${depth}`) ? events : undefined
      },
      { timeoutMs: 3000, what: `the event emitted ${depth} microtasks after a store` },
    ).catch(() => undefined)
    t.ok(all, `stored: the event emitted ${depth} microtasks after the queue's last store`)
    if (!all) return
  }
})
