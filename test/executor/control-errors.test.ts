/**
 * The control-flow errors job functions import from 'bosun/functions' (worker/function-kit.ts)
 * reach the boss as their code and delay, from a thread and inline alike.
 */
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { createExecutor } from '../../worker/executor/index.js'
import { silentLogger } from '../../runner/logger.js'

const DIR = fileURLToPath(new URL('../fixtures/inline-functions/', import.meta.url))

for (const isolation of ['declared', 'threads'] as const) {
  t.test(`RetryLaterError and UnrecoverableError (${isolation === 'declared' ? 'inline' : 'thread'})`, async (t) => {
    const ex = await createExecutor({
      functionsDir: DIR,
      concurrency: 1,
      isolation,
      execArgv: [],
      abortGraceMs: 200,
      maxResultBytes: 1024 * 1024,
      logger: silentLogger(),
    })
    t.teardown(() => ex.close())
    const later = await ex.run({ jobId: 'a', attempt: 1, fn: 'steer', payload: { later: true, ms: 5000 } }).promise
    t.same(later, {
      ok: false,
      error: { message: 'not yet', name: 'RetryLaterError', code: 'BOSUN_ERR_RETRY_LATER', retryInMs: 5000 },
    })
    const never = await ex.run({ jobId: 'b', attempt: 1, fn: 'steer', payload: {} }).promise
    t.same(never, {
      ok: false,
      error: { message: 'this can never work', name: 'UnrecoverableError', code: 'BOSUN_ERR_UNRECOVERABLE' },
    })
  })
}
