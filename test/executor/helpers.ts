/** Shared pieces of the executor tests: fixture paths, a pool that closes itself, a capturing logger. */
import { fileURLToPath } from 'node:url'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import { FunctionPool, type FunctionPoolOptions } from '../../worker/executor/index.js'
import { silentLogger } from '../../runner/logger.js'

export const FIXTURES = fileURLToPath(new URL('../fixtures/functions/', import.meta.url))

/** Absolute path of a test function. */
export function fixture(name: string): string {
  return join(FIXTURES, `${name}.mjs`)
}

/** A logger whose JSON lines are kept in `lines`. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n'))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>)
      cb()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

interface Teardown {
  teardown(fn: () => unknown): void
}

/**
 * A pool closed at the end of the test, one job per thread unless `threads` says otherwise. Threads
 * start with no Node options (`execArgv: []`), as they do in production (`node dist/...`), instead of
 * inheriting tap's TypeScript loader (seconds per thread).
 */
export function makePool(t: Teardown, opts: Partial<FunctionPoolOptions> = {}): FunctionPool {
  // One job per thread unless a test asks for shared threads: the default (one thread per core)
  // would make these tests depend on the machine's core count.
  const concurrency = opts.concurrency ?? 2
  const pool = new FunctionPool({
    concurrency,
    threads: concurrency,
    logger: silentLogger(),
    execArgv: [],
    ...opts,
  })
  t.teardown(() => pool.close())
  return pool
}

let seq = 0
/** A run request for a test function. */
export function req(
  name: string,
  payload: unknown = null,
  extra: { timeoutMs?: number; jobId?: string; attempt?: number } = {},
) {
  return {
    jobId: extra.jobId ?? `job-${++seq}`,
    attempt: extra.attempt ?? 1,
    functionFile: fixture(name),
    payload,
    timeoutMs: extra.timeoutMs,
  }
}

/** Folder contents: a string is a file's text, an object a sub-folder. */
export interface DirSpec {
  [name: string]: string | DirSpec
}

/**
 * A fresh temporary folder (unique per call, so concurrent runs never share one) filled from `spec`,
 * removed at the end of the test. Returns its path.
 */
export function tempDir(t: Teardown, spec: DirSpec = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'bosun-exec-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const fill = (at: string, s: DirSpec) => {
    for (const [name, v] of Object.entries(s)) {
      if (typeof v === 'string') writeFileSync(join(at, name), v)
      else {
        mkdirSync(join(at, name))
        fill(join(at, name), v)
      }
    }
  }
  fill(dir, spec)
  return dir
}
