/**
 * ReplyInbox against a real nats-server: replies reach their own caller among many in flight, and
 * each failure comes as the nats.js error class callers classify (timeout, no responders, a
 * connection dropped under the request, closed).
 */
import t from 'tap'
import { connect, errors as natsErrors, headers } from '@nats-io/transport-node'
import { ReplyInbox } from '../../runner/transport/reply-inbox.js'
import { startNats, uniqueName } from '../helpers/servers.js'

const enc = new TextEncoder()
const dec = new TextDecoder()

t.test('reply inbox on one nats-server', async (t) => {
  const nats = await startNats({ jetstream: false })
  t.teardown(() => nats.close())

  t.test('each reply resolves its own request, headers travel, nothing is left pending', async (t) => {
    const nc = await connect({ servers: nats.url })
    t.teardown(() => nc.close())
    const subject = uniqueName('echo')
    // Answers out of order: every third request waits, so replies cross.
    nc.subscribe(subject, {
      callback: (_err, msg) => {
        const body = dec.decode(msg.data)
        const answer = () => msg.respond(enc.encode(`${body}:${msg.headers?.get('X-Tag') ?? ''}`))
        if (Number(body) % 3 === 0) setTimeout(answer, 5)
        else answer()
      },
    })
    await nc.flush()
    const inbox = new ReplyInbox(nc)
    t.teardown(() => inbox.close())
    const h = headers()
    h.set('X-Tag', 'tagged')
    const replies = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        inbox.request(subject, enc.encode(String(i)), { timeoutMs: 2000, ...(i === 7 ? { headers: h } : {}) }),
      ),
    )
    t.same(
      replies.map((m) => dec.decode(m.data)),
      Array.from({ length: 200 }, (_, i) => `${i}:${i === 7 ? 'tagged' : ''}`),
    )
    t.equal(inbox.inFlight, 0)
  })

  t.test('no reply in time is a TimeoutError; nobody listening is a no-responders RequestError', async (t) => {
    const nc = await connect({ servers: nats.url })
    t.teardown(() => nc.close())
    const silent = uniqueName('silent')
    nc.subscribe(silent, { callback: () => undefined })
    await nc.flush()
    const inbox = new ReplyInbox(nc)
    t.teardown(() => inbox.close())
    const t0 = Date.now()
    const timedOut = await inbox.request(silent, enc.encode('x'), { timeoutMs: 150 }).catch((e: unknown) => e)
    t.ok(timedOut instanceof natsErrors.TimeoutError, `TimeoutError (got ${String(timedOut)})`)
    t.ok(Date.now() - t0 >= 150, 'not before its timeout')
    const nobody = await inbox
      .request(uniqueName('nobody'), enc.encode('x'), { timeoutMs: 2000 })
      .catch((e: unknown) => e)
    t.ok(nobody instanceof natsErrors.RequestError && nobody.isNoResponders(), `no responders (got ${String(nobody)})`)
    t.equal(inbox.inFlight, 0)
  })

  t.test('a connection dropped under a request fails it at once; close fails the rest', async (t) => {
    const own = await startNats({ jetstream: false })
    t.teardown(() => own.close())
    const nc = await connect({ servers: own.url, reconnectTimeWait: 100, maxReconnectAttempts: -1 })
    t.teardown(() => nc.close())
    const silent = uniqueName('silent')
    nc.subscribe(silent, { callback: () => undefined })
    await nc.flush()
    const inbox = new ReplyInbox(nc)
    const pending = inbox.request(silent, enc.encode('x'), { timeoutMs: 60_000 }).catch((e: unknown) => e)
    await nc.flush()
    const t0 = Date.now()
    await own.server.kill()
    const dropped = await pending
    t.ok(
      dropped instanceof natsErrors.RequestError && !dropped.isNoResponders(),
      `RequestError (got ${String(dropped)})`,
    )
    t.ok(Date.now() - t0 < 10_000, 'long before its 60 s timeout')
    // Disconnected: a request now waits (nats.js buffers the publish) until close fails it.
    const waiting = inbox.request(silent, enc.encode('y'), { timeoutMs: 60_000 }).catch((e: unknown) => e)
    inbox.close()
    inbox.close()
    t.ok((await waiting) instanceof natsErrors.ClosedConnectionError, 'closed')
    const after = await inbox.request(silent, enc.encode('z'), { timeoutMs: 1000 }).catch((e: unknown) => e)
    t.ok(after instanceof natsErrors.ClosedConnectionError, 'a request after close is refused')
  })
})

t.test('a shared reply prefix: the caller gets its reply, another subscriber hears it too', async (t) => {
  const nats = await startNats({ jetstream: false })
  t.teardown(() => nats.close())
  const nc = await connect({ servers: nats.url })
  const other = await connect({ servers: nats.url })
  t.teardown(async () => {
    await nc.close()
    await other.close()
  })
  const subject = uniqueName('echo')
  nc.subscribe(subject, {
    callback: (_err, msg) => {
      msg.respond(enc.encode(`re:${dec.decode(msg.data)}`))
    },
  })
  const prefix = `${uniqueName('acks')}.boss1.`
  const heard: Array<[string, string]> = []
  other.subscribe(`${prefix}*`, {
    callback: (_err, msg) => {
      heard.push([msg.subject, dec.decode(msg.data)])
    },
  })
  await nc.flush()
  await other.flush()
  const inbox = new ReplyInbox(nc, prefix)
  t.teardown(() => inbox.close())
  const told: string[] = []
  const reply = await inbox.request(subject, enc.encode('x'), { timeoutMs: 2000, onReplySubject: (s) => told.push(s) })
  t.equal(dec.decode(reply.data), 're:x', 'the caller gets the reply')
  t.equal(told.length, 1, 'told its reply subject once')
  t.ok(told[0]!.startsWith(prefix), 'under the shared prefix')
  await other.flush()
  t.same(heard, [[told[0], 're:x']], 'the other subscriber heard the same reply on that subject')
  t.equal(inbox.inFlight, 0)
})
