/**
 * A tiny declarative env parser: every variable is declared once with its type, default, bounds
 * and documentation; `parseEnv` validates all of them and reports every bad value in one error.
 * The same declarations produce README's configuration table (`describeEnv`).
 */
import { errors } from './errors.js'

interface Base<T> {
  /** Documentation (README table). */
  doc: string
  /** Default when unset or empty; `undefined` makes the value optional. */
  default?: T
  /** Required: no default and must be set. */
  required?: boolean
}
export type EnvSpec =
  | (Base<string> & { type: 'string'; pattern?: RegExp; patternDoc?: string })
  | (Base<number> & { type: 'int'; min?: number; max?: number })
  | (Base<boolean> & { type: 'bool' })
  | (Base<string> & { type: 'enum'; values: readonly string[] })
  | (Base<string[]> & { type: 'list'; itemPattern?: RegExp; patternDoc?: string })

type ValueOf<S extends EnvSpec> = S extends { type: 'int' }
  ? number
  : S extends { type: 'bool' }
    ? boolean
    : S extends { type: 'list' }
      ? string[]
      : string

export type ParsedEnv<T extends Record<string, EnvSpec>> = {
  readonly [K in keyof T]: T[K] extends { default: unknown } | { required: true }
    ? ValueOf<T[K]>
    : ValueOf<T[K]> | undefined
}

export function parseEnv<T extends Record<string, EnvSpec>>(specs: T, env: NodeJS.ProcessEnv): ParsedEnv<T> {
  const out: Record<string, unknown> = {}
  const problems: string[] = []
  for (const [name, spec] of Object.entries(specs)) {
    const raw = env[name]
    if (raw === undefined || raw.trim() === '') {
      if (spec.required) problems.push(`${name} is required (${spec.doc})`)
      out[name] = spec.default
      continue
    }
    const value = raw.trim()
    switch (spec.type) {
      case 'string':
        if (spec.pattern && !spec.pattern.test(value))
          problems.push(`${name}=${JSON.stringify(value)} is invalid: expected ${spec.patternDoc ?? spec.pattern}`)
        out[name] = value
        break
      case 'int': {
        const n = Number(value)
        if (!/^-?\d+$/.test(value) || !Number.isSafeInteger(n))
          problems.push(`${name}=${JSON.stringify(value)} is not an integer`)
        else if (spec.min !== undefined && n < spec.min) problems.push(`${name}=${n} is below the minimum ${spec.min}`)
        else if (spec.max !== undefined && n > spec.max) problems.push(`${name}=${n} is above the maximum ${spec.max}`)
        out[name] = n
        break
      }
      case 'bool':
        if (!/^(true|false|1|0|yes|no)$/i.test(value))
          problems.push(`${name}=${JSON.stringify(value)} is not a boolean (true/false)`)
        out[name] = /^(true|1|yes)$/i.test(value)
        break
      case 'enum':
        if (!spec.values.includes(value))
          problems.push(`${name}=${JSON.stringify(value)} must be one of ${spec.values.join(', ')}`)
        out[name] = value
        break
      case 'list': {
        const items = value
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '')
        for (const item of items) {
          if (spec.itemPattern && !spec.itemPattern.test(item))
            problems.push(
              `${name} item ${JSON.stringify(item)} is invalid: expected ${spec.patternDoc ?? spec.itemPattern}`,
            )
        }
        out[name] = items
        break
      }
    }
  }
  if (problems.length > 0) throw errors.CONFIG(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
  return Object.freeze(out) as ParsedEnv<T>
}

/** Markdown rows `| VAR | default | meaning |` for README. */
export function describeEnv(specs: Record<string, EnvSpec>): string {
  return Object.entries(specs)
    .map(([name, s]) => {
      const def =
        s.default === undefined
          ? s.required
            ? '(required)'
            : '(unset)'
          : Array.isArray(s.default)
            ? s.default.join(',')
            : String(s.default)
      return `| \`${name}\` | \`${def}\` | ${s.doc} |`
    })
    .join('\n')
}
