/**
 * One error shape for every answer that is not a success: `{ statusCode, code, message, details? }`.
 * Fastify's own errors (validation, body parsing, content type, size, bad URL, unknown route) are
 * mapped to bosun's coded errors here; a BosunError keeps its status and gets `Retry-After` when it
 * carries `retryAfterSeconds`. Anything else is a bug: logged with its stack, answered 500 without
 * leaking its message.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { BosunError, errors, isBosunError } from '../runner/errors.js'
import { drainBoundFor, drainRequestBody } from './oversized-body.js'

/** The body of every error answer (api/schemas.ts ErrorSchema). */
export interface ErrorBody {
  statusCode: number
  /** Stable code, BOSUN_ERR_…. */
  code: string
  message: string
  /** Extra fields, e.g. `{ index, field }` of a bad batch item. */
  details?: Record<string, unknown>
}

/** Code of an unexpected failure (not in runner/errors.ts: it is never raised on purpose). */
export const INTERNAL_ERROR_CODE = errors.INTERNAL.code

/** One entry of a Fastify validation error (Ajv / typebox error objects share this shape). */
interface ValidationIssue {
  keyword?: string
  instancePath?: string
  schemaPath?: string
  params?: Record<string, unknown>
  message?: string
}

/** `['jobs', '3', 'priority']` → `jobs[3].priority`. */
function fieldName(segments: string[]): string {
  let out = ''
  for (const s of segments) out += /^\d+$/.test(s) ? `[${s}]` : out === '' ? s : `.${s}`
  return out
}

function pointerSegments(pointer: string | undefined): string[] {
  if (!pointer) return []
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

/** Turn a Fastify validation error into a message naming the field (and the batch index). */
export function describeValidation(
  issues: readonly ValidationIssue[],
  context: string | undefined,
): { message: string; details: Record<string, unknown> } {
  const where = context ?? 'request'
  const issue = issues[0] ?? {}
  const segments = pointerSegments(issue.instancePath)
  let problem: string
  switch (issue.keyword) {
    case 'required': {
      const missing = (issue.params?.requiredProperties ?? issue.params?.missingProperty) as
        string[] | string | undefined
      const name = Array.isArray(missing) ? missing[0] : missing
      if (name !== undefined) segments.push(String(name).replace(/^\./, ''))
      problem = 'is required'
      break
    }
    case 'additionalProperties': {
      const extra = (issue.params?.additionalProperties ?? issue.params?.additionalProperty) as
        string[] | string | undefined
      const name = Array.isArray(extra) ? extra[0] : extra
      if (name !== undefined) segments.push(String(name))
      problem = 'is not allowed (unknown property)'
      break
    }
    case 'boolean':
      // typebox reports `additionalProperties: false` as "schema is false" at the extra property.
      problem = issue.schemaPath?.endsWith('additionalProperties')
        ? 'is not allowed (unknown property)'
        : 'is not allowed'
      break
    case 'enum': {
      const allowed = issue.params?.allowedValues
      problem = Array.isArray(allowed)
        ? `must be one of ${allowed.map(String).join(', ')}`
        : (issue.message ?? 'is invalid')
      break
    }
    default:
      problem = issue.message ?? 'is invalid'
  }
  const field = fieldName(segments)
  const details: Record<string, unknown> = { field: field === '' ? where : `${where}.${field}` }
  if (where === 'body' && segments[0] === 'jobs' && segments[1] !== undefined && /^\d+$/.test(segments[1])) {
    // A batch item: name the index first, then the field inside the item.
    const index = Number(segments[1])
    details.index = index
    const inner = fieldName(segments.slice(2))
    return { message: `jobs[${index}] is invalid: ${inner === '' ? 'the item' : inner} ${problem}`, details }
  }
  return { message: `${details.field as string} ${problem}`, details }
}

/** What to answer for `err`, and how loudly to log it. */
export interface MappedError {
  body: ErrorBody
  retryAfterSeconds?: number
  /** 'error': a bug (stack logged); 'warn': a service failure; 'none': the client's fault. */
  log: 'none' | 'warn' | 'error'
}

function fromBosun(err: BosunError): MappedError {
  const body: ErrorBody = { statusCode: err.statusCode, code: err.code, message: err.message }
  if (err.details !== undefined && Object.keys(err.details).length > 0) body.details = err.details
  const mapped: MappedError = { body, log: err.statusCode >= 500 ? 'warn' : 'none' }
  if (err.retryAfterSeconds !== undefined) mapped.retryAfterSeconds = err.retryAfterSeconds
  return mapped
}

/** Map any thrown value to the answer. Pure; exported for tests. */
export function mapError(err: unknown, bodyLimitBytes?: number): MappedError {
  if (isBosunError(err)) return fromBosun(err)
  const e = (err ?? {}) as Partial<FastifyError> & { validation?: ValidationIssue[]; validationContext?: string }
  if (Array.isArray(e.validation)) {
    const { message, details } = describeValidation(e.validation, e.validationContext)
    return fromBosun(errors.VALIDATION(message, { details }))
  }
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return fromBosun(
        errors.UNSUPPORTED_MEDIA_TYPE('unsupported content type: send a JSON body with Content-Type: application/json'),
      )
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return fromBosun(
        errors.BODY_TOO_LARGE(
          bodyLimitBytes === undefined ? undefined : `request body is larger than the limit of ${bodyLimitBytes} bytes`,
        ),
      )
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return fromBosun(errors.BAD_JSON('body is empty but Content-Type is application/json'))
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return fromBosun(errors.BAD_JSON())
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return fromBosun(errors.BAD_JSON('body size does not match Content-Length'))
    case 'FST_ERR_BAD_URL':
      return fromBosun(errors.VALIDATION('the URL is malformed (bad percent-encoding)'))
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return fromBosun(errors.VALIDATION('a path parameter is too long'))
    case 'FST_ERR_NOT_FOUND':
      return fromBosun(errors.ROUTE_NOT_FOUND())
  }
  if (err instanceof SyntaxError && e.statusCode === 400) return fromBosun(errors.BAD_JSON())
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500
  if (status >= 400 && status < 500) {
    // Some other client error raised by Fastify or a plugin: keep its status and message.
    const code =
      status === 401
        ? errors.UNAUTHORIZED.code
        : status === 404
          ? errors.ROUTE_NOT_FOUND.code
          : status === 429
            ? errors.RATE_LIMITED.code
            : status === 413
              ? errors.BODY_TOO_LARGE.code
              : status === 415
                ? errors.UNSUPPORTED_MEDIA_TYPE.code
                : errors.VALIDATION.code
    return {
      body: {
        statusCode: status,
        code,
        message: typeof e.message === 'string' && e.message !== '' ? e.message : 'bad request',
      },
      log: 'none',
    }
  }
  return { body: { statusCode: 500, code: INTERNAL_ERROR_CODE, message: 'internal error' }, log: 'error' }
}

/** Send the mapped answer for `err` (used by the error, not-found and framework-error handlers). */
export function sendError(
  err: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  bodyLimitBytes?: number,
): FastifyReply {
  const mapped = mapError(err, bodyLimitBytes)
  const { body } = mapped
  if (mapped.log === 'error')
    request.log.error({ err }, 'unexpected error answering %s %s', request.method, request.url)
  else if (mapped.log === 'warn') request.log.warn({ err, code: body.code }, 'request failed: %s', body.message)
  else request.log.debug({ code: body.code, statusCode: body.statusCode }, 'request rejected: %s', body.message)
  const retryAfter = mapped.retryAfterSeconds ?? (body.statusCode === 503 || body.statusCode === 429 ? 1 : undefined)
  if (retryAfter !== undefined) reply.header('retry-after', String(Math.max(0, Math.ceil(retryAfter))))
  return reply.code(body.statusCode).type('application/json; charset=utf-8').send(body)
}

/** Install the error handler and the not-found handler on the root instance. */
export function installErrorHandling(app: FastifyInstance, bodyLimitBytes: number): void {
  const drainBound = drainBoundFor(bodyLimitBytes)
  app.setErrorHandler(async (err, request, reply) => {
    // A body over the limit: read the rest before answering, so the client gets the 413 (api/oversized-body.ts).
    if ((err as Partial<FastifyError>).code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const ended = await drainRequestBody(request.raw, drainBound)
      if (!ended) reply.header('connection', 'close')
    }
    return sendError(err, request, reply, bodyLimitBytes)
  })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.length > 200 ? `${request.url.slice(0, 200)}…` : request.url
    return sendError(errors.ROUTE_NOT_FOUND(`no route ${request.method} ${path}`), request, reply)
  })
}

/** Fastify's `frameworkErrors` option: bad URLs and the like, answered in the same shape. */
export function frameworkErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  sendError(err, request, reply)
}
