/**
 * StreamFollower (jobs/streams/follow.ts) when its consumer vanishes or goes quiet, against a real
 * nats-server: the consumer is deleted under it (nats-server 2.9.10 tells its open pull requests `409
 * Consumer Deleted`), or its server stops answering (SIGSTOP); either way the follower starts a new
 * consumer where it was and delivers what was stored meanwhile, each message once and in order. (Pull
 * requests the server ends without a word: test/jobs/follow-pulls.test.ts.)
 */
import t, { type Test } from 'tap'
import { jetstream, jetstreamManager, StorageType } from '@nats-io/jetstream'
import { StreamFollower } from '../../jobs/streams/follow.js'
import { captureLogger } from '../executor/helpers.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'
import { natsConn } from './store-helpers.js'

const nats = await startNats()
t.teardown(() => nats.close())

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A stream with a follower on it that has delivered messages 1–3. */
async function following(t: Test, prefix: string) {
  const nc = await natsConn(t, nats.url)
  const js = jetstream(nc)
  const jsm = await jetstreamManager(nc)
  const name = uniqueName(prefix)
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
  const publishUpTo = async (from: number, to: number) => {
    for (let i = from; i <= to; i++) await js.publish(`${name}.x`, String(i))
  }
  await publishUpTo(1, 3)
  await waitFor(() => seen.length === 3, { what: 'the first messages' })
  return { jsm, name, cap, seen, follower, publishUpTo }
}

t.test('a follower whose consumer vanished resumes where it was, missing nothing', async (t) => {
  const { jsm, name, seen, follower, publishUpTo } = await following(t, 'vanish')
  const consumers: string[] = []
  for await (const ci of jsm.consumers.list(name)) consumers.push(ci.name)
  t.equal(consumers.length, 1, 'one consumer follows the stream')
  await jsm.consumers.delete(name, consumers[0]!)
  const gone = performance.now()
  await publishUpTo(4, 6)
  await waitFor(() => seen.length >= 6, { what: 'the messages stored while it was gone', timeoutMs: 30_000 })
  t.comment(`resumed ${Math.round(performance.now() - gone)} ms after its consumer was deleted`)
  await sleep(300)
  t.same(seen, [1, 2, 3, 4, 5, 6], 'each message once, in order')
  t.equal(follower.lastSequence, 6)
})

t.test('a consumer whose server stops answering is replaced, and the follow resumes where it was', async (t) => {
  const { cap, seen, follower, publishUpTo } = await following(t, 'quiet')
  await nats.server.pause()
  await sleep(2500)
  nats.server.resume()
  await waitFor(() => cap.lines.some((l) => l.msg === 'stream consumer silent; recreating it'), {
    what: 'the follower noticing the silence',
  })
  await publishUpTo(4, 6)
  await waitFor(() => seen.length >= 6, { what: 'the messages stored after the silence', timeoutMs: 30_000 })
  await sleep(300)
  t.same(seen, [1, 2, 3, 4, 5, 6], 'each message once, in order')
  t.equal(follower.lastSequence, 6)
})
