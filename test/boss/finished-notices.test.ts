/** FinishedNotices: the jobs finished in one turn go out in one message, long turns in chunks. */
import t from 'tap'
import type { FinishedNotice } from '../../jobs/protocol.js'
import { FinishedNotices, MAX_NOTICES_PER_MESSAGE } from '../../worker/boss/finished-notices.js'

const nextTurn = () => new Promise((r) => setImmediate(r))

t.test('one message per turn, in order, none lost or repeated', async (t) => {
  const sent: FinishedNotice[][] = []
  const notices = new FinishedNotices((jobs) => sent.push(jobs))
  notices.add('a', 'succeeded')
  notices.add('b', 'failed')
  t.same(sent, [], 'nothing before the turn ends')
  await nextTurn()
  notices.add('c', 'cancelled')
  await nextTurn()
  await nextTurn()
  t.same(sent, [
    [
      { id: 'a', state: 'succeeded' },
      { id: 'b', state: 'failed' },
    ],
    [{ id: 'c', state: 'cancelled' }],
  ])
})

t.test('a turn with more than a message holds is sent in chunks', async (t) => {
  const sent: FinishedNotice[][] = []
  const notices = new FinishedNotices((jobs) => sent.push(jobs))
  const n = 2 * MAX_NOTICES_PER_MESSAGE + 5
  for (let i = 0; i < n; i++) notices.add(`j${i}`, 'succeeded')
  await nextTurn()
  t.same(
    sent.map((m) => m.length),
    [MAX_NOTICES_PER_MESSAGE, MAX_NOTICES_PER_MESSAGE, 5],
  )
  t.same(
    sent.flat().map((j) => j.id),
    Array.from({ length: n }, (_, i) => `j${i}`),
  )
})
