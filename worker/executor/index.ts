/** The function executor: catalog of job functions, worker-thread pool, and the two together. */
export { loadCatalog, FUNCTION_EXTENSIONS, type FunctionCatalog } from './catalog.js'
export { DEFAULT_FUNCTIONS_DIR, PROJECT_ROOT, THREAD_ENTRY, findProjectRoot } from './paths.js'
export { FunctionPool } from './pool.js'
export {
  DEFAULT_ABORT_GRACE_MS,
  DEFAULT_MAX_LOG_LINES,
  DEFAULT_MAX_RESULT_BYTES,
  DEFAULT_SHARED_SLICE_MS,
  DEFAULT_THREAD_HEAP_MB,
  type FunctionPoolOptions,
  type PoolStats,
  type RunRequest,
} from './pool-types.js'
export { FUNCTION_CRASHED_CODE, type AbortReason, type RunHandle, type RunOutcome } from './outcomes.js'
export { FunctionExecutor, createExecutor, type ExecutorOptions, type ExecutorRunRequest } from './executor.js'
