/**
 * StreamFollower (jobs/streams/follow.ts) when its consumer goes silent, against a real nats-server:
 * the consumer is deleted under it (as a server that loses it, or stops answering its pulls, leaves
 * it waiting), and the follower notices the missing heartbeats, starts a new consumer where it was,
 * and delivers what was stored meanwhile, each message once and in order. It logs the recovery.
 */
import t from 'tap'
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream'
import { StreamFollower } from '../../jobs/streams/follow.js'
import { captureLogger } from '../executor/helpers.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { natsConn } from './store-helpers.js'

const nats = await startNats()
t.teardown(() => nats.close())

t.test('a follower whose consumer vanished resumes where it was, missing nothing', async (t) => {
  const nc = await natsConn(t, nats.url)
  const js = jetstream(nc)
  const jsm = await jetstreamManager(nc)
  const name = uniqueName('silent')
  await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File, num_replicas: 1 })
  const cap = captureLogger()
  const seen: number[] = []
  const follower = new StreamFollower({
    js,
    jsm,
    stream: name,
    filter: `${name}.>`,
    log: cap.logger,
    onMessage: (m) => seen.push(Number(new TextDecoder().decode(m.data))),
    onInitialDone: () => undefined,
  })
  t.teardown(() => follower.stop())
  for (let i = 1; i <= 3; i++) await js.publish(`${name}.x`, String(i))
  await waitFor(() => seen.length === 3, { what: 'the first messages' })

  const consumers: string[] = []
  for await (const ci of jsm.consumers.list(name)) consumers.push(ci.name)
  t.equal(consumers.length, 1, 'one consumer follows the stream')
  await jsm.consumers.delete(name, consumers[0]!)
  const gone = performance.now()
  for (let i = 4; i <= 6; i++) await js.publish(`${name}.x`, String(i))
  await waitFor(() => seen.length >= 6, { what: 'the messages stored while it was silent', timeoutMs: 30_000 })
  t.comment(`resumed ${Math.round(performance.now() - gone)} ms after its consumer was deleted`)
  await new Promise((r) => setTimeout(r, 300))
  t.same(seen, [1, 2, 3, 4, 5, 6], 'each message once, in order')
  t.equal(follower.lastSequence, 6)
})
