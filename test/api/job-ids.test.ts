import t from 'tap'
import { decodeTime, isValid } from 'ulid'
import { bufferedCryptoPrng, newBatchId } from '../../jobs/job-ids.js'

t.test('batch ids are valid ULIDs, strictly increasing, with the current time', async (t) => {
  const before = Date.now()
  const ids = Array.from({ length: 5000 }, () => newBatchId())
  const after = Date.now()
  t.ok(
    ids.every((id) => isValid(id)),
    'every id is a ULID',
  )
  t.equal(new Set(ids).size, ids.length, 'no id repeats')
  t.ok(
    ids.every((id, i) => i === 0 || id > ids[i - 1]!),
    'ids sort in creation order, also within one millisecond',
  )
  const times = ids.map((id) => decodeTime(id))
  t.ok(
    times.every((ms) => ms >= before && ms <= after),
    'the time part is the creation time',
  )
})

t.test('the buffered PRNG is uniform over [0, 1) across pool refills', async (t) => {
  const prng = bufferedCryptoPrng(64)
  const n = 64_000
  const buckets = new Array<number>(8).fill(0)
  for (let i = 0; i < n; i++) {
    const x = prng()
    if (!(x >= 0 && x < 1)) t.fail(`out of range: ${x}`)
    buckets[Math.floor(x * 8)]!++
  }
  // Each bucket expects n/8 = 8,000 (σ ≈ 84); ±800 is far outside chance but catches a stuck pool.
  t.ok(
    buckets.every((b) => Math.abs(b - n / 8) < 800),
    `buckets are even: ${buckets.join(' ')}`,
  )
})
