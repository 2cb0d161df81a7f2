/** `node dist/worker/main.js` — the Procfile's `worker` process. */
// First: V8 flags must be set before the code they tune is loaded.
import '../runner/v8-tuning.js'
import { createLogger, runMain } from '../runner/index.js'
import { loadWorkerConfig } from './config.js'
import { WorkerProcess } from './process.js'

await runMain(
  'worker',
  loadWorkerConfig,
  (cfg) => createLogger({ level: cfg.runtime.logLevel, pretty: cfg.runtime.logPretty, name: 'bosun-worker' }),
  (cfg, logger) => WorkerProcess.start(cfg, logger),
)
