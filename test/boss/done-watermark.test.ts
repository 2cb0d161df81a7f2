/** DONE's watermark: never past a final record whose done mask is not durable, nor past a write in flight. */
import t from 'tap'
import { DoneWatermark } from '../../worker/boss/done-watermark.js'

t.test('moves with settled records, stops below an unsettled one', async (t) => {
  const w = new DoneWatermark(10)
  t.equal(w.value, 10)
  const a = w.hold() // written next: gets 11 or more
  t.equal(w.value, 10, 'a write in flight holds it where it is')
  const b = w.hold()
  w.landed(b, 12)
  t.equal(w.value, 10, 'a later record landed first: still held by the one in flight')
  w.landed(a, 11)
  t.equal(w.value, 10)
  w.release(a)
  t.equal(w.value, 11, 'the first is settled')
  w.release(b)
  t.equal(w.value, 12)
})

t.test('a write answered by an older record holds the watermark below that one', async (t) => {
  const w = new DoneWatermark(20)
  const h = w.hold()
  w.landed(h, 5) // a predecessor's record stood there
  t.equal(w.value, 4)
  w.release(h)
  t.equal(w.value, 20)
})

t.test('records known unsettled at the start (the tail) hold it until released; the read end moves it', async (t) => {
  const w = new DoneWatermark(100)
  const x = w.hold(103)
  const y = w.hold(107)
  w.advance(110)
  t.equal(w.value, 102)
  w.release(x)
  t.equal(w.value, 106)
  w.release(y)
  t.equal(w.value, 110)
  t.equal(w.pending, 0)
  const z = w.hold()
  t.equal(z.floor, 111, 'a new write lands after everything read')
})
