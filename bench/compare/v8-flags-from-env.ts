/**
 * Imported first by compare/child.ts: sets the V8 flags named in BENCH_V8_FLAGS (space-separated)
 * for this BullMQ process before BullMQ is loaded — the way bosun's processes set theirs
 * (runner/v8-tuning.ts), so both sides of the comparison run on the same Node settings. Not on
 * `node`'s command line: BullMQ's sandbox starts its worker threads with the parent's execArgv, and
 * Node refuses V8 flags there (ERR_WORKER_INVALID_EXEC_ARGV). Worker threads share the process's flags.
 */
import { setFlagsFromString } from 'node:v8'

for (const flag of (process.env.BENCH_V8_FLAGS ?? '').split(' ')) if (flag) setFlagsFromString(flag)
