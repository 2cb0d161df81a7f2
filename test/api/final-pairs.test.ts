/**
 * FinalPairs: an announced record and its write's acknowledgement pair in either order; only an
 * acknowledgement that says stored releases the record; unpaired entries go after two sweeps and
 * never exceed their bound.
 */
import t from 'tap'
import { ackStored, FinalPairs } from '../../api/final-pairs.js'
import type { Job } from '../../jobs/model.js'
import { newJob } from '../helpers/boss-fakes.js'

const job = (id: string): Job => newJob({ id, state: 'succeeded', attempts: 1 })
const enc = (x: unknown) => new TextEncoder().encode(typeof x === 'string' ? x : JSON.stringify(x))

t.test('ackStored: only a JetStream acknowledgement with a stream and a sequence', async (t) => {
  t.ok(ackStored(enc({ stream: 'S', seq: 3 })))
  t.ok(ackStored(enc({ stream: 'S', seq: 3, duplicate: true })))
  t.notOk(ackStored(enc({ error: { code: 400, err_code: 10071 }, stream: 'S', seq: 3 })), 'an error')
  t.notOk(ackStored(enc({ stream: '', seq: 3 })))
  t.notOk(ackStored(enc({ stream: 'S', seq: '3' })))
  t.notOk(ackStored(enc({ stream: 'S', seq: 1.5 })))
  t.notOk(ackStored(enc('null')))
  t.notOk(ackStored(enc('[]')))
  t.notOk(ackStored(enc('{')))
  t.notOk(ackStored(new Uint8Array(0)), 'a no-responders status has no body')
})

t.test('pairs in either order, released only by a stored acknowledgement', async (t) => {
  const p = new FinalPairs()
  t.equal(p.record('a1', job('A')), undefined, 'a record alone waits')
  t.equal(p.acked('a1', true)?.id, 'A', 'its acknowledgement releases it')
  t.equal(p.acked('b1', true), undefined, 'an acknowledgement alone waits')
  t.equal(p.record('b1', job('B'))?.id, 'B', 'its record is released at once')
  t.equal(p.record('c1', job('C')), undefined)
  t.equal(p.acked('c1', false), undefined, 'a refused write releases nothing')
  t.equal(p.acked('d1', false), undefined)
  t.equal(p.record('d1', job('D')), undefined, 'nor when the refusal came first')
  t.equal(p.size, 0, 'nothing is left of the pairs')
  t.equal(p.acked('a1', true), undefined, 'a pair is used once: a repeated acknowledgement releases nothing')
})

t.test('unpaired entries are forgotten after two sweeps, and bounded', async (t) => {
  const p = new FinalPairs(3)
  p.record('r1', job('R'))
  p.acked('k1', true)
  p.sweep()
  t.equal(p.acked('r1', true)?.id, 'R', 'one sweep keeps a record')
  t.equal(p.record('k1', job('K'))?.id, 'K', 'and an acknowledgement')
  p.record('r2', job('R2'))
  p.sweep()
  p.sweep()
  t.equal(p.acked('r2', true), undefined, 'two sweeps forget it')
  p.sweep()
  p.sweep()
  for (let i = 0; i < 10; i++) p.acked(`x${i}`, true)
  t.ok(p.size <= 6, `at most two generations of the bound (${p.size})`)
})
