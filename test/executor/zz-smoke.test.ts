import { createExecutor } from '../../worker/executor/index.js'
import { createLogger } from '../../runner/logger.js'
const ex = await createExecutor({ concurrency: 2, logger: createLogger({ level: 'debug' }) })
console.log(ex.functions)
console.log(await ex.run({ jobId: 'a', attempt: 1, fn: 'echo', payload: { x: 1 } }).promise)
console.log(await ex.run({ jobId: 'b', attempt: 1, fn: 'fail', payload: { message: 'boom' } }).promise)
const h = ex.run({ jobId: 'c', attempt: 1, fn: 'sleep', payload: { ms: 5000 }, timeoutMs: 100 })
console.log(await h.promise)
console.log(await ex.run({ jobId: 'd', attempt: 1, fn: 'nope', payload: 1 }).promise)
await ex.close()
import t from 'tap'; t.pass('x')
