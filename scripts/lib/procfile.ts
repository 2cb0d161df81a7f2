/**
 * Procfile and formation parsing, as foreman and honcho understand them:
 * `name: command` lines (comments and blank lines ignored), and a formation such as
 * `api=1 worker=3` or `api=1,worker=3`.
 */

/** One Procfile entry. */
export interface ProcfileEntry {
  readonly name: string
  readonly command: string
}

/** Process type → number of instances. */
export type Formation = ReadonlyMap<string, number>

const NAME = /^[A-Za-z0-9_-]+$/
/** Characters that make a command more than one simple command (then it cannot be `exec`ed). */
const SHELL_SYNTAX = /[;&|<>()`\n]|\$\(/

/** Parse Procfile text; throws with the line number on a malformed line or a duplicate name. */
export function parseProcfile(text: string): ProcfileEntry[] {
  const entries: ProcfileEntry[] = []
  const lines = text.split(/\r?\n/)
  lines.forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    const name = colon > 0 ? line.slice(0, colon).trim() : ''
    const command = colon > 0 ? line.slice(colon + 1).trim() : ''
    if (!NAME.test(name) || command === '')
      throw new Error(`Procfile line ${i + 1}: expected "name: command", got ${JSON.stringify(raw)}`)
    if (entries.some((e) => e.name === name))
      throw new Error(`Procfile line ${i + 1}: duplicate process type "${name}"`)
    entries.push({ name, command })
  })
  if (entries.length === 0) throw new Error('Procfile has no processes')
  return entries
}

/**
 * Parse formation arguments (`api=2 worker=5`, `api=2,worker=5`, `all=1`) on top of `defaults`.
 * Types missing from both get 1 instance, as in foreman. Throws on an unknown type or a bad count.
 */
export function parseFormation(
  args: readonly string[],
  entries: readonly ProcfileEntry[],
  defaults: Readonly<Record<string, number>> = {},
): Formation {
  const names = entries.map((e) => e.name)
  const out = new Map<string, number>(names.map((n) => [n, defaults[n] ?? 1]))
  for (const item of args
    .flatMap((a) => a.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '')) {
    const m = /^([A-Za-z0-9_-]+)=(\d{1,3})$/.exec(item)
    if (!m) throw new Error(`bad formation "${item}": expected name=count, e.g. worker=3`)
    const [, name, count] = m as unknown as [string, string, string]
    if (name === 'all') {
      for (const n of names) out.set(n, Number(count))
    } else if (out.has(name)) {
      out.set(name, Number(count))
    } else {
      throw new Error(`unknown process type "${name}" (the Procfile has ${names.join(', ')})`)
    }
  }
  return out
}

/**
 * The argv that runs a Procfile command through `sh -c`. A simple command is `exec`ed so the
 * process we supervise is the program itself, not a shell waiting on it.
 */
export function shellArgs(command: string): [string, string[]] {
  const simple = !SHELL_SYNTAX.test(command) && !/^exec\s/.test(command)
  return ['sh', ['-c', simple ? `exec ${command}` : command]]
}

/** Formation as text, e.g. `api=1 worker=3`. */
export function formatFormation(formation: Formation): string {
  return [...formation].map(([n, c]) => `${n}=${c}`).join(' ')
}
