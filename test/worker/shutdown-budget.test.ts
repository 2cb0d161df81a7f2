/**
 * The worker's SIGTERM budget (worker/config.ts): every accepted configuration fits in the contract's
 * 10 s — WORKER_SHUTDOWN_GRACE_MS is bounded so that deleting the znodes, the grace, the hand-back,
 * the result flush and closing end before runMain's forced exit. The end-to-end proof with real
 * processes is test/e2e/sigterm-budget.test.ts.
 */
import t from 'tap'
import { FORCE_EXIT_MS } from '../../runner/main.js'
import { loadWorkerConfig, MAX_SHUTDOWN_GRACE_MS, SHUTDOWN_BUDGET, workerEnv } from '../../worker/config.js'

/** README "Guarantees, and how they are kept": after SIGTERM a worker exits 0 within 10 s. */
const STOP_LIMIT_MS = 10_000

t.test('the phases of the largest accepted grace fit under the forced exit, which fits in 10 s', async (t) => {
  const b = SHUTDOWN_BUDGET
  const worst = b.znodesMs + workerEnv.WORKER_SHUTDOWN_GRACE_MS.max + b.handBackMs + b.flushMs + b.closeMs
  t.ok(worst <= b.totalMs, `worst case ${worst} ms ≤ budget ${b.totalMs} ms`)
  t.ok(b.totalMs < FORCE_EXIT_MS, `budget ${b.totalMs} ms < forced exit ${FORCE_EXIT_MS} ms`)
  t.ok(FORCE_EXIT_MS < STOP_LIMIT_MS, `forced exit ${FORCE_EXIT_MS} ms < ${STOP_LIMIT_MS} ms`)
  t.ok(workerEnv.WORKER_SHUTDOWN_GRACE_MS.default <= MAX_SHUTDOWN_GRACE_MS, 'the default is accepted')
})

t.test('WORKER_SHUTDOWN_GRACE_MS above the bound is a clear configuration error', async (t) => {
  const atMax = loadWorkerConfig({ WORKER_SHUTDOWN_GRACE_MS: String(MAX_SHUTDOWN_GRACE_MS) })
  t.equal(atMax.shutdownGraceMs, MAX_SHUTDOWN_GRACE_MS, 'the bound itself is accepted')
  t.throws(() => loadWorkerConfig({ WORKER_SHUTDOWN_GRACE_MS: String(MAX_SHUTDOWN_GRACE_MS + 1) }), {
    code: 'BOSUN_ERR_CONFIG',
    message: /WORKER_SHUTDOWN_GRACE_MS=5001 is above the maximum 5000/,
  })
  t.throws(() => loadWorkerConfig({ WORKER_SHUTDOWN_GRACE_MS: '9000' }), { code: 'BOSUN_ERR_CONFIG' })
})
