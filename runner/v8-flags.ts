/**
 * The V8 flags bosun's long-running processes run with (applied by `runner/v8-tuning.ts`), in one
 * place so the compare benchmark can give BullMQ's processes the same ones
 * (bench/compare.ts; `--bullmq-node-defaults` leaves them out).
 *
 * `--interrupt-budget`: V8 optimizes a function once it has run this much bytecode (Node 20's
 * default: 67,584). bosun's hot paths — the boss's per-job bookkeeping and codecs, the workers'
 * dispatch and result handling, nats.js — are many small functions that a fresh process ran
 * unoptimized for a long time: a new cluster did its first 20,000 no-op jobs at ≈ 60 % of its later
 * speed and the next 20,000 at ≈ 80 % (the boss's CPU per job 62 → 36 µs), which is also how long a
 * newly elected boss or a scaled-up worker runs slow. With 8,192 the same functions are optimized
 * after a fraction of the work (README "Benchmarks", "A fresh process's warm-up").
 */

/** Bytecode a function runs before V8 considers optimizing it. */
export const INTERRUPT_BUDGET = 8192

/** The flags, as `node` takes them on its command line. */
export const BOSUN_V8_FLAGS: readonly string[] = [`--interrupt-budget=${INTERRUPT_BUDGET}`]
