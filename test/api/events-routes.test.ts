/**
 * The cluster-event routes on a fake event view: GET /cluster/events pages newest first and refuses
 * bad queries with a 400; GET /cluster/leadership answers the terms; GET /cluster/events/stream
 * is Server-Sent Events over a real socket (resume with Last-Event-ID, live events, ends with the
 * app); all of them need a token when tokens are set.
 */
import t from 'tap'
import type { AddressInfo } from 'node:net'
import { errorShape, makeApp } from './helpers.js'
import { FakeClusterEvents } from './fake-events.js'
import type { ClusterEvent } from '../../runner/events/model.js'

const source = { id: 'w1', host: 'h', pid: 7, role: 'worker' }
function seed(events: FakeClusterEvents, n: number): void {
  for (let i = 0; i < n; i++)
    events.add({
      type: i % 3 === 0 ? 'boss.elected' : 'worker.joined',
      at: new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString(),
      source,
      epoch: Math.floor(i / 3) + 1,
      data: i % 3 === 0 ? { boss: { id: `b${i}`, host: 'h', pid: 1 } } : { worker: `w${i}` },
    })
}

t.test('GET /cluster/events: newest first, paged, filtered; bad queries are 400s', async (t) => {
  const events = new FakeClusterEvents()
  seed(events, 10)
  const { inject } = await makeApp(t, { events })
  const first = await inject({ method: 'GET', url: '/cluster/events?limit=4' })
  t.equal(first.statusCode, 200)
  const body = first.json<{ events: ClusterEvent[]; next?: string }>()
  t.same(
    body.events.map((e) => e.id),
    ['10', '9', '8', '7'],
  )
  const second = (await inject({ method: 'GET', url: `/cluster/events?limit=4&cursor=${body.next}` })).json()
  t.same(
    second.events.map((e: ClusterEvent) => e.id),
    ['6', '5', '4', '3'],
  )
  const typed = (await inject({ method: 'GET', url: '/cluster/events?type=boss.elected' })).json()
  t.same(
    typed.events.map((e: ClusterEvent) => e.id),
    ['10', '7', '4', '1'],
  )
  for (const q of ['type=boss.exploded', 'limit=0', 'limit=5000', 'cursor=abc', 'since=yesterday', 'color=red']) {
    const res = await inject({ method: 'GET', url: `/cluster/events?${q}` })
    t.equal(res.statusCode, 400, q)
    t.equal(errorShape(res).statusCode, 400)
  }
})

t.test('GET /cluster/leadership answers the terms newest first', async (t) => {
  const events = new FakeClusterEvents()
  seed(events, 7)
  const { inject } = await makeApp(t, { events })
  const res = await inject({ method: 'GET', url: '/cluster/leadership' })
  t.equal(res.statusCode, 200)
  const { terms } = res.json()
  t.same(
    terms.map((x: { epoch: number }) => x.epoch),
    [3, 2, 1],
  )
  t.match(terms[2], { epoch: 1, boss: { id: 'b0', host: 'h', pid: 1 }, after: 'first', ended: 'crashed' })
})

t.test('the event routes need a token when tokens are set', async (t) => {
  const { inject } = await makeApp(t, { apiTokens: ['s3cret'] })
  for (const url of ['/cluster/events', '/cluster/leadership', '/cluster/events/stream'])
    t.equal((await inject({ method: 'GET', url })).statusCode, 401, url)
  const ok = await inject({ method: 'GET', url: '/cluster/leadership', headers: { authorization: 'Bearer s3cret' } })
  t.equal(ok.statusCode, 200)
})

/** Read an SSE response until `done` says enough; returns the parsed events. */
async function readSse(res: Response, done: (evs: { id: string; event: string; data: ClusterEvent }[]) => boolean) {
  const reader = res.body!.getReader()
  const out: { id: string; event: string; data: ClusterEvent }[] = []
  let buf = ''
  while (!done(out)) {
    const { value, done: end } = await reader.read()
    if (end) break
    buf += new TextDecoder().decode(value)
    let i
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, i)
      buf = buf.slice(i + 2)
      const f = Object.fromEntries(
        block
          .split('\n')
          .filter((l) => !l.startsWith(':') && l.includes(': '))
          .map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
      )
      if (f.data) out.push({ id: f.id ?? '', event: f.event ?? '', data: JSON.parse(f.data) })
    }
  }
  await reader.cancel()
  return out
}

t.test('GET /cluster/events/stream: SSE, Last-Event-ID resume, live events, 400 on a bad id', async (t) => {
  const events = new FakeClusterEvents()
  seed(events, 5)
  const { app } = await makeApp(t, { events })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/cluster/events/stream`

  const resumed = await fetch(url, { headers: { 'last-event-id': '3' } })
  t.equal(resumed.status, 200)
  t.match(resumed.headers.get('content-type'), /^text\/event-stream/)
  setTimeout(() => seed(events, 1), 100)
  const got = await readSse(resumed, (evs) => evs.length >= 3)
  t.same(
    got.map((e) => [e.id, e.event]),
    [
      ['4', 'boss.elected'],
      ['5', 'worker.joined'],
      ['6', 'boss.elected'],
    ],
    'the retained events after the id, then the live one',
  )
  t.equal(got[2]!.data.id, '6')

  const viaQuery = await fetch(`${url}?lastEventId=5`)
  const q = await readSse(viaQuery, (evs) => evs.length >= 1)
  t.same(
    q.map((e) => e.id),
    ['6'],
  )
  const bad = await fetch(url, { headers: { 'last-event-id': 'nope' } })
  t.equal(bad.status, 400)
  await bad.text()

  const open = await fetch(url)
  t.equal(open.status, 200)
  const closed = app.close()
  await open.text() // the app's close ends the stream
  await closed
  t.equal(events.following, 0, 'every follow stopped')
})
