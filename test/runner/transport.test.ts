import t, { type Test } from 'tap'
import { connect, type NatsConnection } from '@nats-io/transport-node'
import { errors, isBosunError, type BosunError } from '../../runner/errors.js'
import { silentLogger } from '../../runner/logger.js'
import type { Envelope, TransportStatus } from '../../runner/contracts.js'
import { connectNats } from '../../runner/transport/connect.js'
import { NatsTransport } from '../../runner/transport/nats-transport.js'
import { remoteCode } from '../../runner/transport/envelope.js'
import { finishedJobsSubject, procSubject, subjectFor } from '../../runner/transport/subjects.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { waitFor } from '../helpers/wait.js'

const logger = silentLogger()

async function rejectsWith(t: Test, p: Promise<unknown>, code: string, what: string): Promise<BosunError> {
  try {
    await p
  } catch (err) {
    t.ok(isBosunError(err), `${what}: a BosunError`)
    t.equal((err as BosunError).code, code, `${what}: ${code}`)
    return err as BosunError
  }
  t.fail(`${what}: expected a rejection with ${code}`)
  throw new Error('unreachable')
}

t.test('transport on one nats-server', async (t) => {
  const nats = await startNats({ jetstream: false })
  t.teardown(() => nats.close())
  const cfg = { servers: [nats.url] }

  async function pair(t: Test) {
    const cluster = uniqueName('c')
    const a = new NatsTransport({ nc: await connectNats(cfg, { name: 'a', logger }), cluster, nodeId: 'a', logger })
    const b = new NatsTransport({ nc: await connectNats(cfg, { name: 'b', logger }), cluster, nodeId: 'b', logger })
    t.teardown(() => Promise.all([a.close(), b.close()]))
    return { a, b, cluster }
  }

  t.test('address, send and handle', async (t) => {
    const { a, b, cluster } = await pair(t)
    t.equal(a.address, `bosun.${cluster}.proc.a`)
    t.equal(b.address, procSubject(cluster, 'b'))
    t.ok(a.connected)
    const got: Array<{ body: unknown; env: Envelope }> = []
    b.handle('greet', (body, env) => {
      got.push({ body, env })
    })
    await b.flush()
    t.equal(a.send(b.address, 'greet', { hi: 1 }, { epoch: 7 }), true)
    t.equal(a.send(b.address, 'greet', undefined), true)
    await waitFor(() => got.length === 2, { what: 'two messages' })
    t.same(got[0]!.body, { hi: 1 })
    t.same(got[0]!.env, { v: 1, type: 'greet', from: a.address, epoch: 7, body: { hi: 1 } })
    t.equal(got[1]!.body, null, 'an undefined body travels as null')
    t.equal(got[1]!.env.epoch, undefined)
  })

  t.test('request/reply, async handlers, epoch, errors', async (t) => {
    const { a, b } = await pair(t)
    b.handle('add', async (body, env) => {
      const { x, y } = body as { x: number; y: number }
      await new Promise((r) => setImmediate(r))
      return { sum: x + y, epoch: env.epoch ?? null, from: env.from }
    })
    b.handle('nothing', () => undefined)
    b.handle('coded', () => {
      throw errors.STALE_EPOCH('epoch 3 < 5', { details: { newest: 5 } })
    })
    b.handle('plain', () => {
      throw new TypeError('boom')
    })
    b.handle('unserialisable', () => ({ n: 10n }))
    await b.flush()
    t.same(await a.request(b.address, 'add', { x: 2, y: 3 }, { epoch: 4 }), { sum: 5, epoch: 4, from: a.address })
    t.equal(await a.request(b.address, 'nothing', null), null)
    const coded = await rejectsWith(t, a.request(b.address, 'coded', {}), errors.REMOTE.code, 'coded remote error')
    t.equal(remoteCode(coded), errors.STALE_EPOCH.code, 'original code preserved')
    t.equal(coded.message, 'epoch 3 < 5')
    t.match(coded.details, {
      code: errors.STALE_EPOCH.code,
      statusCode: 409,
      details: { newest: 5 },
      from: b.address,
      type: 'coded',
    })
    const plain = await rejectsWith(t, a.request(b.address, 'plain', {}), errors.REMOTE.code, 'plain remote error')
    t.equal(plain.message, 'boom')
    t.equal(remoteCode(plain), errors.REMOTE.code)
    const bad = await rejectsWith(
      t,
      a.request(b.address, 'unserialisable', {}),
      errors.REMOTE.code,
      'unserialisable reply',
    )
    t.equal(remoteCode(bad), errors.BAD_MESSAGE.code)
    // many requests in flight at once
    const many = await Promise.all(
      Array.from({ length: 200 }, (_, i) => a.request<{ sum: number }>(b.address, 'add', { x: i, y: 1 })),
    )
    t.same(
      many.map((r) => r.sum),
      Array.from({ length: 200 }, (_, i) => i + 1),
    )
  })

  t.test('timeouts, no responders, unknown type, bad input', async (t) => {
    const { a, b } = await pair(t)
    b.handle('never', () => new Promise(() => undefined))
    await b.flush()
    const started = Date.now()
    await rejectsWith(
      t,
      a.request(b.address, 'never', {}, { timeoutMs: 300 }),
      errors.REQUEST_TIMEOUT.code,
      'slow handler',
    )
    t.ok(Date.now() - started >= 250, 'waited for the timeout')
    await rejectsWith(
      t,
      a.request(procSubject(a.cluster, 'nobody'), 'x', {}, { timeoutMs: 5000 }),
      errors.NO_RESPONDERS.code,
      'no responders',
    )
    const unknown = await rejectsWith(
      t,
      a.request(b.address, 'no-such-type', {}, { timeoutMs: 5000 }),
      errors.REMOTE.code,
      'unknown type',
    )
    t.equal(remoteCode(unknown), errors.BAD_MESSAGE.code, 'answered at once with BAD_MESSAGE')
    await rejectsWith(t, a.request(b.address, 'x', { big: 1n }), errors.BAD_MESSAGE.code, 'unserialisable body')
    await rejectsWith(t, a.request('bad subject', 'x', {}), errors.BAD_MESSAGE.code, 'invalid address')
    t.equal(a.send('bad subject', 'x', {}), false, 'send to an invalid address returns false')
    t.equal(a.send(b.address, 'x', { big: 1n }), false, 'send of an unserialisable body returns false')
    const huge = 'x'.repeat(2 * 1024 * 1024)
    await rejectsWith(t, a.request(b.address, 'never', huge), errors.BODY_TOO_LARGE.code, 'body over max_payload')
    t.equal(a.send(b.address, 'never', huge), false, 'send over max_payload returns false')
    t.ok(a.connected, 'still connected after oversized messages')
  })

  t.test('malformed messages are dropped and the process keeps working', async (t) => {
    const { a, b } = await pair(t)
    const seen: unknown[] = []
    b.handle('ok', (body) => {
      seen.push(body)
      return 'fine'
    })
    await b.flush()
    const raw: NatsConnection = await connect({ servers: nats.url })
    t.teardown(() => raw.close())
    const garbage: Array<string | Uint8Array> = [
      'not json',
      '',
      '[1,2,3]',
      'null',
      '42',
      JSON.stringify({ v: 2, type: 'ok', from: 'x', body: 1 }),
      JSON.stringify({ v: 1, from: 'x', body: 1 }),
      JSON.stringify({ v: 1, type: 'ok', body: 1 }),
      JSON.stringify({ v: 1, type: 'ok', from: 'x' }),
      JSON.stringify({ v: 1, type: 'ok', from: 'x', epoch: -1, body: 1 }),
      JSON.stringify({ v: 1, type: 'ok', from: 'x', epoch: 'high', body: 1 }),
      JSON.stringify({ v: 1, type: 'reply', from: 'x', ok: true, body: 1 }),
      JSON.stringify({ v: 1, type: 'unknown', from: 'x', body: 1 }),
      JSON.stringify({ v: 1, type: 'x'.repeat(500), from: 'x', body: 1 }),
      new Uint8Array([0xff, 0xfe, 0x00, 0x7b]),
      '{"v":1,"type":"ok","from":"x","body":',
    ]
    for (const g of garbage) raw.publish(b.address, g)
    await raw.flush()
    await waitFor(() => b.dropped === garbage.length, { what: 'every garbage message dropped' })
    t.same(seen, [], 'no handler ran for garbage')
    // garbage sent as a request gets an immediate error reply, not a timeout
    const reply = await raw.request(b.address, 'garbage', { timeout: 5000 })
    t.match(JSON.parse(reply.string()), { v: 1, type: 'reply', ok: false, error: { code: errors.BAD_MESSAGE.code } })
    // a garbage reply is a BAD_MESSAGE at the requester
    const fake = raw.subscribe(procSubject(a.cluster, 'liar'), {
      callback: (_e, m) => {
        m.respond('nonsense')
      },
    })
    t.teardown(() => fake.unsubscribe())
    await raw.flush()
    await rejectsWith(t, a.request(procSubject(a.cluster, 'liar'), 'x', {}), errors.BAD_MESSAGE.code, 'malformed reply')
    // the process still works
    t.equal(await a.request(b.address, 'ok', { still: 'alive' }), 'fine')
    t.same(seen, [{ still: 'alive' }])
  })

  t.test('listen on an event subject', async (t) => {
    const { a, b, cluster } = await pair(t)
    const events: Array<{ env: Envelope; subject: string }> = []
    const stop = b.listen(subjectFor(cluster, 'events', 'job', 'job1'), (env, subject) => events.push({ env, subject }))
    // a second subscription with a wildcard sees every job
    const all: string[] = []
    const stopAll = b.listen(subjectFor(cluster, 'events', 'job', '*'), (_env, subject) => all.push(subject))
    await b.flush()
    t.equal(a.send(subjectFor(cluster, 'events', 'job', 'job1'), 'job.finished', { id: 'job1' }), true)
    await waitFor(() => events.length > 0, { what: 'event delivered' })
    t.same(events[0]!.env.body, { id: 'job1' })
    t.equal(events[0]!.subject, `bosun.${cluster}.events.job.job1`)
    a.send(subjectFor(cluster, 'events', 'job', 'job2'), 'job.finished', { id: 'job2' })
    await waitFor(() => all.includes(`bosun.${cluster}.events.job.job2`), { what: 'wildcard event' })
    stop()
    stopAll()
  })

  t.test('close is idempotent; closed transport never throws on send', async (t) => {
    const { a, b } = await pair(t)
    b.handle('ping', () => 'pong')
    await b.flush()
    const statuses: TransportStatus[] = []
    a.on('status', (s) => statuses.push(s))
    const p1 = a.close()
    const p2 = a.close()
    t.equal(p1, p2, 'the same closing promise')
    await p1
    t.equal(a.connected, false)
    t.equal(a.status, 'closed')
    t.same(statuses, ['closed'])
    t.equal(a.send(b.address, 'ping', {}), false)
    await rejectsWith(t, a.request(b.address, 'ping', {}), errors.CLOSED.code, 'request after close')
    t.throws(() => a.handle('x', () => 1), { code: errors.CLOSED.code })
    await a.close()
  })

  t.test('close lets a running handler answer before draining', async (t) => {
    const { a, b } = await pair(t)
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let entered = false
    b.handle('slow', async () => {
      entered = true
      await gate
      return 'done'
    })
    await b.flush()
    const answer = a.request(b.address, 'slow', {}, { timeoutMs: 10_000 })
    await waitFor(() => entered, { what: 'handler running' })
    const closing = b.close()
    setTimeout(release, 100)
    t.equal(await answer, 'done')
    await closing
  })

  t.test('subject helpers validate tokens', async (t) => {
    t.equal(subjectFor('c1', 'proc', 'n1'), 'bosun.c1.proc.n1')
    t.equal(finishedJobsSubject('c1'), 'bosun.c1.events.finished')
    t.equal(subjectFor('c1', 'events', 'job', '>'), 'bosun.c1.events.job.>')
    for (const bad of ['a.b', 'a b', '*', '>', '']) {
      t.throws(() => procSubject('c1', bad), { code: errors.BAD_MESSAGE.code }, `rejects ${JSON.stringify(bad)}`)
    }
    t.throws(() => subjectFor('c.1', 'proc'), { code: errors.BAD_MESSAGE.code })
  })
})

t.test('requests work across a nats-server restart without restarting the client', async (t) => {
  const nats = await startNats({ jetstream: false })
  t.teardown(() => nats.close())
  const cluster = uniqueName('c')
  const a = new NatsTransport({
    nc: await connectNats({ servers: [nats.url] }, { name: 'a', logger }),
    cluster,
    nodeId: 'a',
    logger,
  })
  const b = new NatsTransport({
    nc: await connectNats({ servers: [nats.url] }, { name: 'b', logger }),
    cluster,
    nodeId: 'b',
    logger,
  })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  b.handle('echo', (body) => body)
  await b.flush()
  t.same(await a.request(b.address, 'echo', { n: 1 }), { n: 1 })
  const statuses: TransportStatus[] = []
  a.on('status', (s) => statuses.push(s))

  await nats.server.kill()
  await waitFor(() => !a.connected, { what: 'a notices the server is gone' })
  t.equal(a.send(b.address, 'echo', {}), false, 'send while disconnected returns false')
  await rejectsWith(
    t,
    a.request(b.address, 'echo', {}),
    errors.NATS_NOT_CONNECTED.code,
    'request while disconnected fails fast',
  )

  await nats.server.restart()
  await waitFor(() => a.connected && b.connected, { timeoutMs: 30_000, what: 'both reconnect' })
  // b's subscription is restored by the client on reconnect; retry until the server has it
  const answer = await waitFor(
    async () => a.request(b.address, 'echo', { n: 2 }, { timeoutMs: 2000 }).catch(() => undefined),
    {
      timeoutMs: 30_000,
      what: 'request after restart',
    },
  )
  t.same(answer, { n: 2 })
  t.ok(statuses.includes('disconnected'), 'saw disconnected')
  t.equal(statuses.at(-1), 'reconnected', 'ends reconnected')
  t.equal(a.status, 'reconnected')
})
