/**
 * The rate windows store (jobs/rate-ledger-store.ts) against a real nats-server: windows of a
 * function and of its keys are written by compare-and-set on revisions, a stale revision is refused
 * with what is stored, garbage in the bucket is skipped with a warning and can be overwritten, and
 * only windows with a start since a moment are read back.
 */
import t from 'tap'
import { Kvm } from '@nats-io/kv'
import { decodeWindow, encodeWindow, RateLedgerStore, ratesBucket, windowKey } from '../../jobs/rate-ledger-store.js'
import { startNats, uniqueName } from '../helpers/servers.js'
import { logger, natsConn } from './store-helpers.js'

const nats = await startNats()
t.teardown(() => nats.close())

t.test('windows round trip through the encoding; anything else decodes to null', async (t) => {
  const rec = {
    fn: 'echo',
    key: 'tenant/ä 1',
    epoch: 4,
    starts: [1_700_000_000_000, 1_700_000_000_000, 1_700_000_000_250],
  }
  t.same(decodeWindow(encodeWindow(rec)), rec)
  t.same(decodeWindow(encodeWindow({ fn: 'echo', epoch: 1, starts: [] })), { fn: 'echo', epoch: 1, starts: [] })
  const enc = (x: unknown) => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x))
  for (const bad of [
    'not json',
    { v: 2, fn: 'echo', epoch: 1, base: 0, d: [] },
    { v: 1, fn: 'Bad Name', epoch: 1, base: 0, d: [] },
    { v: 1, fn: 'echo', epoch: -1, base: 0, d: [] },
    { v: 1, fn: 'echo', epoch: 1, base: 0, d: [[-5, 1]] },
    {
      v: 1,
      fn: 'echo',
      epoch: 1,
      base: 0,
      d: [
        [5, 1],
        [5, 1],
      ],
    },
    { v: 1, fn: 'echo', epoch: 1, base: 0, d: [[0, 0]] },
    { v: 1, fn: 'echo', epoch: 1, base: 0, d: [[0, 10_001]] },
    { v: 1, fn: 'echo', epoch: 1, base: 0, d: [3] },
    { v: 1, fn: 'echo', epoch: 1, base: 0, d: 'x' },
    { v: 1, fn: 'echo', key: 7, epoch: 1, base: 0, d: [] },
  ])
    t.equal(decodeWindow(enc(bad)), null, JSON.stringify(bad))
  const many = {
    fn: 'echo',
    epoch: 1,
    starts: Array.from({ length: 10_000 }, (_, i) => 1_700_000_000_000 + (i >> 7) * 50),
  }
  const bytes = encodeWindow(many)
  t.same(decodeWindow(bytes), many, '10,000 starts at 79 distinct times round trip')
  t.ok(bytes.length < 2000, `...in ${bytes.length} bytes`)
  t.not(windowKey('echo', 'a'), windowKey('echo', 'b'), 'each key its own window')
  t.match(windowKey('echo', 'any string at all / *'), /^key\.echo\.[0-9a-f]{40}$/, 'a valid bucket key for any key')
})

t.test('compare-and-set writes, refusals with what is stored, garbage skipped, reads since a moment', async (t) => {
  const nc = await natsConn(t, nats.url)
  const cluster = uniqueName('rates')
  const store = await RateLedgerStore.open({ nc, cluster, logger })
  const now = Date.now()
  const w1 = await store.write({ fn: 'echo', epoch: 1, starts: [now - 10] }, 0)
  t.ok(w1.ok, 'created')
  const again = await store.write({ fn: 'echo', epoch: 1, starts: [now - 10, now - 5] }, 0)
  t.equal(again.ok, false, 'a second create is refused')
  if (!again.ok && w1.ok) {
    t.equal(again.revision, w1.revision, 'with the stored revision')
    t.same(again.stored?.starts, [now - 10], 'and window')
  }
  const w2 = w1.ok ? await store.write({ fn: 'echo', epoch: 2, starts: [now - 10, now - 5] }, w1.revision) : w1
  t.ok(w2.ok, 'an update at the stored revision lands')
  const stale = w1.ok ? await store.write({ fn: 'echo', epoch: 1, starts: [now] }, w1.revision) : w1
  t.equal(stale.ok, false, 'an update at an older revision is refused')
  if (!stale.ok) t.equal(stale.stored?.epoch, 2, '...and learns the newer epoch')

  t.ok((await store.write({ fn: 'echo', key: 'k1', epoch: 2, starts: [now - 1] }, 0)).ok, 'a key window')
  t.ok((await store.write({ fn: 'other', epoch: 2, starts: [now - 3_600_000] }, 0)).ok, 'an old window')
  const kv = await new Kvm(nc).open(ratesBucket(cluster))
  await kv.put(windowKey('junk', undefined), new TextEncoder().encode('garbage'))
  await kv.put('fn.mismatch', encodeWindow({ fn: 'echo', epoch: 1, starts: [now] }))

  const read = await store.readSince(now - 60_000)
  t.same(
    read.map((w) => [w.fn, w.key ?? null, w.epoch, w.starts]).sort(),
    [
      ['echo', null, 2, [now - 10, now - 5]],
      ['echo', 'k1', 2, [now - 1]],
    ].sort(),
    'the recent windows; the old one, the garbage and the misfiled record left out',
  )
  const junk = await store.write({ fn: 'junk', epoch: 3, starts: [now] }, 0)
  t.equal(junk.ok, false, 'a create over garbage is refused...')
  if (!junk.ok) {
    t.equal(junk.stored, null, '...with no window')
    t.ok(junk.revision > 0, '...but the revision to overwrite it at')
    t.ok((await store.write({ fn: 'junk', epoch: 3, starts: [now] }, junk.revision)).ok, 'overwritten')
  }
})
