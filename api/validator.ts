/**
 * The validator compiler: typebox's compiled checks. Bodies are checked exactly as parsed (never
 * coerced, never stripped). Query strings and path parameters arrive as strings, so a top-level
 * `integer` / `number` / `boolean` property is converted first — strictly: `"12"` → 12, but
 * `"1.5"`, `"1e3"`, `"0x10"` or `""` for an integer stay strings and fail the check (typebox's own
 * `Value.Convert` would truncate or guess).
 */
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify'
import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'

const INTEGER = /^-?\d{1,16}$/
const NUMBER = /^-?\d{1,16}(\.\d{1,16})?$/

function convertOne(schema: unknown, value: unknown): unknown {
  if (typeof value !== 'string' || schema === null || typeof schema !== 'object') return value
  const type = (schema as { type?: unknown }).type
  if (type === 'integer' && INTEGER.test(value)) {
    const n = Number(value)
    return Number.isSafeInteger(n) ? n : value
  }
  if (type === 'number' && NUMBER.test(value)) return Number(value)
  if (type === 'boolean' && (value === 'true' || value === 'false')) return value === 'true'
  return value
}

/** A copy of a flat string record with declared numeric / boolean properties converted. */
export function convertStrings(schema: TSchema, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value
  const properties = (schema as { properties?: Record<string, unknown> }).properties ?? {}
  const out: Record<string, unknown> = {}
  for (const [key, v] of Object.entries(value))
    out[key] = Object.hasOwn(properties, key) ? convertOne(properties[key], v) : v
  return out
}

export const validatorCompiler: FastifySchemaCompiler<TSchema> = ({ schema, httpPart }) => {
  const check = Compile(schema)
  const convert = httpPart === 'querystring' || httpPart === 'params'
  return (input: unknown) => {
    const value = convert ? convertStrings(schema, input) : input
    if (check.Check(value)) return { value }
    return { error: check.Errors(value) as unknown as FastifySchemaValidationError[] }
  }
}
