/**
 * Where the executor's plain-JavaScript assets live. tsc does not copy `.mjs` files to `dist/`, so both
 * the bundled functions and the thread entry are found from the project root, which works the same
 * from the TypeScript sources (worker/executor/*.ts under tap) and from the build (dist/worker/executor/*.js).
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const THREAD_FILE = join('worker', 'executor', 'thread.mjs')

/**
 * The nearest folder at or above `from` that holds a package.json and the executor's thread entry.
 * @throws Error when there is none (a broken install).
 */
export function findProjectRoot(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from)
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, THREAD_FILE))) return dir
    const parent = dirname(dir)
    if (parent === dir) throw new Error(`bosun: no project root (package.json + ${THREAD_FILE}) above ${from}`)
    dir = parent
  }
}

/** The repository root (the folder holding package.json). */
export const PROJECT_ROOT: string = findProjectRoot()

/** The bundled example functions (echo, sleep, fail, noop): the default `FUNCTIONS_DIR`. */
export const DEFAULT_FUNCTIONS_DIR: string = join(PROJECT_ROOT, 'worker', 'functions')

/** The worker-thread entry (plain ES module, never compiled). */
export const THREAD_ENTRY: string = join(PROJECT_ROOT, THREAD_FILE)
