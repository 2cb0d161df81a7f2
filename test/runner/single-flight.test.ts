/**
 * SingleFlight (runner/zk/single-flight.ts) in isolation, no server: a run() or kick() never gets
 * lost, wherever it lands relative to the end of the current loop, and failed background passes
 * are retried with a growing delay.
 */
import t from 'tap'
import { SingleFlight } from '../../runner/zk/single-flight.js'
import { waitFor } from '../helpers/wait.js'

/** Call `fn` after `depth` hops through the microtask queue. */
function afterMicrotasks(depth: number, fn: () => void): void {
  if (depth === 0) return fn()
  queueMicrotask(() => afterMicrotasks(depth - 1, fn))
}

// The last pass's promise settles, then the loop ends, then the loop's promise settles: a call in any
// of those microtasks must still get a pass that starts after it. 0–15 hops cover all of them.
const DEPTHS = Array.from({ length: 16 }, (_, i) => i)

t.test('a run() landing in any microtask after the last pass gets a pass of its own', async (t) => {
  for (const depth of DEPTHS) {
    let passes = 0
    let late: Promise<{ passesAtCall: number }> | undefined
    const flight = new SingleFlight(
      async () => {
        passes++
        if (passes !== 1) return
        late = new Promise((resolve) => {
          afterMicrotasks(depth, () => {
            const passesAtCall = passes
            flight.run().then(
              () => resolve({ passesAtCall }),
              () => resolve({ passesAtCall }),
            )
          })
        })
      },
      { retryMs: 10, onError: () => undefined },
    )
    await flight.run()
    const { passesAtCall } = await late!
    t.ok(passes > passesAtCall, `depth ${depth}: run() at pass ${passesAtCall} resolved after pass ${passes}`)
    flight.close()
  }
})

t.test('a kick() landing in any microtask after the last pass is not lost', async (t) => {
  for (const depth of DEPTHS) {
    let passes = 0
    const flight = new SingleFlight(
      async () => {
        passes++
        if (passes === 1) afterMicrotasks(depth, () => flight.kick())
      },
      { retryMs: 10, onError: () => undefined },
    )
    await flight.run()
    const what = `depth ${depth}: the kicked pass`
    await waitFor(() => passes === 2, { timeoutMs: 2000, what }).catch(() => undefined)
    t.equal(passes, 2, `depth ${depth}: the kick ran one more pass`)
    flight.close()
  }
})

t.test('concurrent run() calls coalesce into one more pass; errors reach run() callers', async (t) => {
  let passes = 0
  let fail = false
  let release: (() => void) | undefined
  const flight = new SingleFlight(
    async () => {
      passes++
      if (passes === 1) await new Promise<void>((r) => (release = r))
      if (fail) throw new Error('boom')
    },
    { retryMs: 10, onError: () => undefined },
  )
  const first = flight.run()
  const joined = [flight.run(), flight.run(), flight.run()]
  release!()
  await Promise.all([first, ...joined])
  t.equal(passes, 2, 'one pass for the first call, one more for all the calls that joined')
  fail = true
  await t.rejects(flight.run(), { message: 'boom' })
  fail = false
  await flight.run()
  t.equal(passes, 4)
  flight.close()
  await flight.run()
  t.equal(passes, 4, 'no pass after close()')
})

t.test('a failing background pass is retried with a doubling delay, reset by a success', async (t) => {
  const at: number[] = []
  const reported: unknown[] = []
  let failUntil = 5
  const flight = new SingleFlight(
    async () => {
      at.push(performance.now())
      if (at.length <= failUntil) throw new Error(`fail ${at.length}`)
    },
    { retryMs: 20, maxRetryMs: 1000, onError: (err) => void reported.push(err) },
  )
  t.teardown(() => flight.close())
  flight.kick()
  await waitFor(() => at.length === 6, { timeoutMs: 10_000, what: 'five failures, then a success' })
  t.equal(reported.length, 5, 'every failure reported')
  const gaps = at.slice(1).map((v, i) => v - at[i]!)
  // Delays 20, 40, 80, 160, 320: each gap is about its delay. A timer can fire a little before its
  // delay has passed since the push: libuv counts from the loop's cached clock (hence 10 % + 1 ms).
  ;[20, 40, 80, 160, 320].forEach((min, i) => {
    t.ok(gaps[i]! >= min * 0.9 - 1, `retry ${i + 1} after ${Math.round(gaps[i]!)} ms (≥ ${min})`)
  })
  failUntil = 7
  flight.kick() // pass 7 fails, pass 8 (the retry) succeeds
  await waitFor(() => at.length === 8, { timeoutMs: 10_000, what: 'after the success: a failure, then a retry' })
  const gap = at[7]! - at[6]!
  // Not reset, the delay would be 640 ms.
  t.ok(gap >= 17 && gap < 600, `first retry after a success waits ${Math.round(gap)} ms (20, not 640)`)
  t.equal(reported.length, 6)
})

t.test('the delay is capped at maxRetryMs', async (t) => {
  const at: number[] = []
  const flight = new SingleFlight(
    async () => {
      at.push(performance.now())
      if (at.length <= 4) throw new Error('fail')
    },
    { retryMs: 50, maxRetryMs: 100, onError: () => undefined },
  )
  t.teardown(() => flight.close())
  flight.kick()
  await waitFor(() => at.length === 5, { timeoutMs: 10_000, what: 'four failures, then a success' })
  const gap = at[4]! - at[3]!
  t.ok(gap >= 89, `retry 4 after ${Math.round(gap)} ms (≥ 100)`)
  t.ok(gap < 380, `retry 4 after ${Math.round(gap)} ms, capped (uncapped: 400)`)
})

t.test('a failed run() of the caller is retried in the background through retry()', async (t) => {
  let passes = 0
  const flight = new SingleFlight(
    async () => {
      passes++
      if (passes === 1) throw new Error('first pass fails')
    },
    { retryMs: 10, onError: () => undefined },
  )
  t.teardown(() => flight.close())
  const err = await flight.run().then(
    () => undefined,
    (e: unknown) => e,
  )
  t.match(err, { message: 'first pass fails' })
  flight.retry(err)
  await waitFor(() => passes === 2, { timeoutMs: 5000, what: 'the retried pass' })
  t.pass('retried')
})

t.test('no retry when shouldRetry says no, or once closed', async (t) => {
  let passes = 0
  let allow = false
  let reported = 0
  const flight = new SingleFlight(
    async () => {
      passes++
      throw new Error('fails')
    },
    { retryMs: 10, shouldRetry: () => allow, onError: () => void reported++ },
  )
  flight.kick()
  await waitFor(() => reported === 1, { what: 'the failure reported' })
  // retry() reports only when no retry is pending: a second report proves none was scheduled.
  flight.retry(new Error('probe'))
  t.equal(reported, 2, 'shouldRetry false: no retry pending')
  allow = true
  flight.kick()
  await waitFor(() => passes >= 3, { what: 'retries once allowed' })
  flight.close()
  const after = { passes, reported }
  await flight.run()
  flight.kick()
  flight.retry(new Error('x'))
  t.same({ passes, reported }, after, 'closed: no pass, no report, no retry')
})
