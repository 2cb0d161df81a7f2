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
    const flight = new SingleFlight(async () => {
      passes++
      if (passes !== 1) return
      late = new Promise((resolve) => {
        afterMicrotasks(depth, () => {
          const passesAtCall = passes
          flight.run().then(() => resolve({ passesAtCall }), () => resolve({ passesAtCall }))
        })
      })
    }, { retryMs: 10, onError: () => undefined })
    await flight.run()
    const { passesAtCall } = await late!
    t.ok(passes > passesAtCall, `depth ${depth}: run() at pass ${passesAtCall} resolved after pass ${passes}`)
    flight.close()
  }
})

t.test('a kick() landing in any microtask after the last pass is not lost', async (t) => {
  for (const depth of DEPTHS) {
    let passes = 0
    const flight = new SingleFlight(async () => {
      passes++
      if (passes === 1) afterMicrotasks(depth, () => flight.kick())
    }, { retryMs: 10, onError: () => undefined })
    await flight.run()
    await waitFor(() => passes === 2, { timeoutMs: 2000, what: `depth ${depth}: the kicked pass` }).catch(() => undefined)
    t.equal(passes, 2, `depth ${depth}: the kick ran one more pass`)
    flight.close()
  }
})

t.test('concurrent run() calls coalesce into one more pass; errors reach run() callers', async (t) => {
  let passes = 0
  let fail = false
  let release: (() => void) | undefined
  const flight = new SingleFlight(async () => {
    passes++
    if (passes === 1) await new Promise<void>((r) => (release = r))
    if (fail) throw new Error('boom')
  }, { retryMs: 10, onError: () => undefined })
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
