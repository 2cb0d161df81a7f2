/**
 * jsPublish against a real JetStream: acks, compare-and-set and deduplication answer as
 * `js.publish` did, and its failures are classified by store-codec.ts as before; jsDeleteMessage
 * as `jsm.streams.deleteMessage(…, false)` did; jsGetMessage reads what `jsm.streams.getMessage`
 * reads (null for nothing) and rejects garbage answers.
 */
import t, { type Test } from 'tap'
import { JetStreamApiError, jetstreamManager } from '@nats-io/jetstream'
import { connect } from '@nats-io/transport-node'
import { isMessageGone, isTransient, isWrongLastSequence } from '../../jobs/store-codec.js'
import { jsDeleteMessage, jsGetMessage, jsPublish } from '../../jobs/streams/js-inbox.js'
import { ReplyInbox } from '../../runner/transport/reply-inbox.js'
import { startNats, uniqueName } from '../helpers/servers.js'

const enc = new TextEncoder()

/** A nats-server of the test's own with one stream (`name`, subjects `name.>`), and a ReplyInbox. */
async function withStream(t: Test) {
  const nats = await startNats()
  t.teardown(() => nats.close())
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const jsm = await jetstreamManager(nc)
  const name = uniqueName('s')
  await jsm.streams.add({ name, subjects: [`${name}.>`] })
  const inbox = new ReplyInbox(nc)
  t.teardown(() => inbox.close())
  return { jsm, name, inbox }
}

t.test('jsPublish on a real JetStream', async (t) => {
  const { name, inbox } = await withStream(t)
  const opts = { timeoutMs: 2000 }

  const first = await jsPublish(inbox, `${name}.a`, enc.encode('1'), { ...opts, expectLastSubjectSequence: 0 })
  t.same(first, { stream: name, seq: 1, duplicate: false, domain: '' }, 'a create is acked with its sequence')
  const again = await jsPublish(inbox, `${name}.a`, enc.encode('2'), { ...opts, expectLastSubjectSequence: 0 }).catch(
    (e: unknown) => e,
  )
  t.ok(isWrongLastSequence(again), `a second create loses the compare-and-set (got ${String(again)})`)
  const cas = await jsPublish(inbox, `${name}.a`, enc.encode('3'), { ...opts, expectLastSubjectSequence: 1 })
  t.equal(cas.seq, 2, 'a compare-and-set at the right revision lands')

  const d1 = await jsPublish(inbox, `${name}.b`, enc.encode('x'), { ...opts, msgId: 'm1' })
  const d2 = await jsPublish(inbox, `${name}.b`, enc.encode('x'), { ...opts, msgId: 'm1' })
  t.same([d1.duplicate, d2.duplicate, d2.seq], [false, true, d1.seq], 'a retried message id is stored once')
  const plain = await jsPublish(inbox, `${name}.c`, enc.encode('y'), opts)
  t.equal(plain.seq, d1.seq + 1, 'a publish without headers is stored')

  const nowhere = await jsPublish(inbox, `${uniqueName('none')}.x`, enc.encode('z'), opts).catch((e: unknown) => e)
  t.ok(isTransient(nowhere), `no stream listening is retried as transient (got ${String(nowhere)})`)
  t.equal(inbox.inFlight, 0)
})

t.test('jsDeleteMessage on a real JetStream', async (t) => {
  const { jsm, name, inbox } = await withStream(t)
  const a = await jsPublish(inbox, `${name}.a`, enc.encode('1'), { timeoutMs: 2000 })
  const b = await jsPublish(inbox, `${name}.b`, enc.encode('2'), { timeoutMs: 2000 })

  await jsDeleteMessage(inbox, name, a.seq, 2000)
  const gone = await jsm.streams.getMessage(name, { seq: a.seq }).catch((e: unknown) => e)
  t.ok(gone === null || isMessageGone(gone), `the message is gone (got ${String(gone)})`)
  t.equal((await jsm.streams.getMessage(name, { seq: b.seq }))?.seq, b.seq, 'the other one stays')
  const info = await jsm.streams.info(name)
  t.same([info.state.messages, info.state.last_seq], [1, b.seq], 'one message left')

  const twice = await jsDeleteMessage(inbox, name, a.seq, 2000).catch((e: unknown) => e)
  const apiError = JSON.stringify((twice as { apiError?: () => unknown }).apiError?.())
  t.ok(isMessageGone(twice), `deleting it again is "message gone", which io.delete treats as done (got ${apiError})`)
  const nowhere = await jsDeleteMessage(inbox, uniqueName('none'), 1, 2000).catch((e: unknown) => e)
  t.ok(nowhere instanceof Error, `no such stream fails (got ${String(nowhere)})`)
  t.equal(inbox.inFlight, 0)
})

t.test('jsGetMessage on a real JetStream reads what jsm.streams.getMessage reads', async (t) => {
  const { jsm, name, inbox } = await withStream(t)
  const opts = { timeoutMs: 2000 }
  const a1 = await jsPublish(inbox, `${name}.a`, enc.encode('first'), opts)
  const b = await jsPublish(inbox, `${name}.b`, enc.encode('{"x":1}'), opts)
  const a2 = await jsPublish(inbox, `${name}.a`, enc.encode('second'), opts)
  const empty = await jsPublish(inbox, `${name}.e`, new Uint8Array(0), opts)

  const queries = [
    { seq: b.seq },
    { last_by_subj: `${name}.a` },
    { next_by_subj: `${name}.a`, seq: 1 },
    { next_by_subj: `${name}.a`, seq: a1.seq + 1 },
    { last_by_subj: `${name}.e` },
  ]
  for (const q of queries) {
    const mine = await jsGetMessage(inbox, name, q, 2000)
    const theirs = await jsm.streams.getMessage(name, q)
    t.same(
      mine && { seq: mine.seq, subject: mine.subject, data: [...mine.data] },
      theirs && { seq: theirs.seq, subject: theirs.subject, data: [...theirs.data] },
      `the same message for ${JSON.stringify(q)}`,
    )
  }
  t.equal(new TextDecoder().decode((await jsGetMessage(inbox, name, { seq: a2.seq }, 2000))!.data), 'second')
  t.equal((await jsGetMessage(inbox, name, { seq: empty.seq }, 2000))!.data.length, 0, 'an empty message reads empty')

  await jsDeleteMessage(inbox, name, a1.seq, 2000)
  t.equal(await jsGetMessage(inbox, name, { seq: a1.seq }, 2000), null, 'a deleted message is none')
  t.equal(await jsGetMessage(inbox, name, { last_by_subj: `${name}.nothing` }, 2000), null, 'a subject never written')
  t.equal(await jsGetMessage(inbox, name, { seq: empty.seq + 10 }, 2000), null, 'a sequence past the end')
  t.equal(await jsGetMessage(inbox, name, { next_by_subj: `${name}.a`, seq: a2.seq + 1 }, 2000), null, 'nothing next')

  const nowhere = await jsGetMessage(inbox, uniqueName('none'), { seq: 1 }, 2000).catch((e: unknown) => e)
  t.ok(
    nowhere instanceof JetStreamApiError,
    `no such stream is the server's error, not "none" (got ${String(nowhere)})`,
  )
  t.equal(inbox.inFlight, 0)
})

t.test('an answer that is not a JetStream answer is an error naming the request, for every request', async (t) => {
  // No JetStream on this server: the test answers the subjects itself, with garbage.
  const nats = await startNats({ jetstream: false })
  t.teardown(() => nats.close())
  const nc = await connect({ servers: nats.url })
  t.teardown(() => nc.close())
  const inbox = new ReplyInbox(nc)
  t.teardown(() => inbox.close())
  const answers = [
    'not json',
    'null',
    '7',
    '[]',
    '{}',
    '{"error":"boom"}',
    '{"stream":"","seq":1,"success":"yes","message":{"subject":"s","seq":"1"}}',
    '{"message":{"subject":"s","seq":1,"data":7}}',
  ]
  let answer = ''
  for (const subject of ['fake.x', '$JS.API.STREAM.MSG.DELETE.fake', '$JS.API.STREAM.MSG.GET.fake'])
    nc.subscribe(subject, {
      callback: (_e, m) => {
        m.respond(enc.encode(answer))
      },
    })
  await nc.flush()
  const requests = {
    'publishing fake.x': () => jsPublish(inbox, 'fake.x', enc.encode('1'), { timeoutMs: 2000 }),
    'deleting fake#1': () => jsDeleteMessage(inbox, 'fake', 1, 2000),
    'reading fake': () => jsGetMessage(inbox, 'fake', { seq: 1 }, 2000),
  }
  for (answer of answers)
    for (const [what, request] of Object.entries(requests)) {
      const got = await request().catch((e: unknown) => e)
      t.match(String(got), `Error: invalid JetStream reply to ${what}`, `${what}: ${answer} is not an answer`)
    }
  t.equal(inbox.inFlight, 0)
})
