/** Shared OpenAPI response declarations for the route files. */
import { ErrorSchema } from '../schemas.js'

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'malformed JSON or a request that breaks the schema',
  401: 'missing or invalid bearer token (when BOSUN_API_TOKENS is set)',
  404: 'unknown job, or no worker advertises the function',
  409: 'conflict (e.g. idempotency key reused)',
  413: 'body over the limit (API_BODY_LIMIT_BYTES)',
  415: 'Content-Type is not application/json',
  429: 'rate limit or queue limit exceeded; see Retry-After',
  503: 'no boss elected or the cluster is unreachable; see Retry-After',
}

/** `{ 400: ErrorSchema(+description), … }` for the listed status codes. */
export function errorResponses(...codes: number[]): Record<number, typeof ErrorSchema> {
  const out: Record<number, typeof ErrorSchema> = {}
  for (const code of codes)
    out[code] = Object.assign({}, ErrorSchema, { description: ERROR_DESCRIPTIONS[code] ?? 'error' })
  return out
}

/** OpenAPI security requirement for routes behind bearer auth. */
export function security(authOn: boolean): { security?: Record<string, string[]>[] } {
  return authOn ? { security: [{ bearer: [] }] } : {}
}
