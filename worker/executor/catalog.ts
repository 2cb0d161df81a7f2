/**
 * The functions a worker can run: a snapshot of FUNCTIONS_DIR taken at start (README "Job functions").
 * A function is a regular `.js`/`.mjs` file whose name (without extension) matches FUNCTION_NAME_PATTERN.
 * Symbolic links are followed only when their target is a regular file inside the folder; anything else
 * (bad names, folders, sockets, links that escape) is skipped with a log line, never an error.
 */
import { readdir, realpath, stat } from 'node:fs/promises'
import { extname, isAbsolute, join, relative } from 'node:path'
import { errors } from '../../runner/errors.js'
import type { Logger } from '../../runner/logger.js'
import { FUNCTION_NAME_PATTERN } from '../../jobs/model.js'

/** File extensions a function may have, in order of preference when two files share a name. */
export const FUNCTION_EXTENSIONS = ['.mjs', '.js'] as const

/** The functions found in one folder. */
export interface FunctionCatalog {
  /** The folder, as its real path. */
  readonly dir: string
  /** Function names, sorted. */
  readonly names: readonly string[]
  /** Absolute path of the function's file, or undefined for a name that is not in the catalog. */
  resolve(name: string): string | undefined
  /** True when `name` is in the catalog. */
  has(name: string): boolean
}

function isInside(root: string, target: string): boolean {
  const rel = relative(root, target)
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)
}

function rank(ext: string): number {
  return FUNCTION_EXTENSIONS.indexOf(ext as (typeof FUNCTION_EXTENSIONS)[number])
}

/**
 * The file a directory entry stands for, or a reason to skip it. Links are resolved and must stay inside
 * `root` (already a real path) and end at a regular file.
 */
async function entryFile(root: string, entry: import('node:fs').Dirent): Promise<{ file: string } | { skip: string }> {
  const path = join(root, entry.name)
  if (entry.isFile()) return { file: path }
  if (!entry.isSymbolicLink()) return { skip: 'not a regular file' }
  let target: string
  try {
    target = await realpath(path)
  } catch (err) {
    return { skip: `broken symbolic link (${(err as Error).message})` }
  }
  if (!isInside(root, target)) return { skip: 'symbolic link leads outside the functions folder' }
  try {
    if (!(await stat(target)).isFile()) return { skip: 'symbolic link does not lead to a regular file' }
  } catch (err) {
    return { skip: `cannot stat link target (${(err as Error).message})` }
  }
  return { file: target }
}

/**
 * Lists the functions in `functionsDir`.
 * @throws BosunError BOSUN_ERR_CONFIG when the folder cannot be read.
 */
export async function loadCatalog(functionsDir: string, logger: Logger): Promise<FunctionCatalog> {
  const log = logger.child({ component: 'function-catalog' })
  let root: string
  let entries: import('node:fs').Dirent[]
  try {
    root = await realpath(functionsDir)
    entries = await readdir(root, { withFileTypes: true })
  } catch (err) {
    throw errors.CONFIG(`FUNCTIONS_DIR ${functionsDir} is not a readable folder: ${(err as Error).message}`, {
      cause: err,
    })
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))

  const found = new Map<string, { file: string; ext: string }>()
  for (const entry of entries) {
    const ext = extname(entry.name)
    if (rank(ext) < 0) continue // not a function file (README, .cjs, .ts …): silently not ours
    const name = entry.name.slice(0, -ext.length)
    if (!FUNCTION_NAME_PATTERN.test(name)) {
      log.warn({ file: entry.name }, 'function file ignored: name does not match ^[a-z][a-z0-9_-]{0,63}$')
      continue
    }
    const res = await entryFile(root, entry)
    if ('skip' in res) {
      log.warn({ file: entry.name, reason: res.skip }, 'function file ignored')
      continue
    }
    const prev = found.get(name)
    if (prev) {
      const keep = rank(ext) < rank(prev.ext) ? { file: res.file, ext } : prev
      log.warn(
        { function: name, kept: keep.file, files: [prev.file, res.file] },
        'two files define the same function; keeping the preferred extension (.mjs over .js)',
      )
      found.set(name, keep)
      continue
    }
    found.set(name, { file: res.file, ext })
  }

  const names = Object.freeze([...found.keys()].sort())
  const files = new Map([...found].map(([n, v]) => [n, v.file]))
  if (names.length === 0) log.warn({ dir: root }, 'no job functions found')
  else log.info({ dir: root, functions: names }, 'job functions loaded')
  return Object.freeze({
    dir: root,
    names,
    resolve: (name: string) => files.get(name),
    has: (name: string) => files.has(name),
  })
}
