/**
 * Bearer-token authentication for the job routes, /cluster and /metrics (health and /docs stay open).
 * Tokens are compared in constant time: both sides are hashed to 32 bytes first (so lengths never
 * leak) and every configured token is compared, without an early exit.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import { errors } from '../runner/errors.js'

const digest = (token: string): Buffer => createHash('sha256').update(token, 'utf8').digest()

/** Which configured token a request authenticated with (its index), for per-client rate limits. */
const clientOf = new WeakMap<FastifyRequest, string>()

/** The authenticated client's key (`token:<index>`), or undefined when auth is off. */
export function authenticatedClient(request: FastifyRequest): string | undefined {
  return clientOf.get(request)
}

/**
 * Index of the token that matches `presented`, or -1. Constant time in the presented token and in
 * which (if any) configured token matches.
 */
export function matchToken(digests: readonly Buffer[], presented: string): number {
  const p = digest(presented)
  let found = -1
  for (let i = 0; i < digests.length; i++) {
    // Bitwise, not short-circuit: every comparison runs.
    const equal = timingSafeEqual(p, digests[i] as Buffer)
    found = equal && found === -1 ? i : found
  }
  return found
}

/** `Authorization: Bearer <token>` → the token, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
  return m?.[1]
}

/**
 * An onRequest hook that requires one of `tokens`. Missing or wrong → 401 in the error shape with
 * `WWW-Authenticate: Bearer`. `tokens` must be non-empty (auth off = do not install the hook).
 */
export function bearerAuth(tokens: readonly string[]): onRequestHookHandler {
  if (tokens.length === 0) throw errors.CONFIG('bearerAuth needs at least one token')
  const digests = tokens.map(digest)
  return function authenticate(request: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void): void {
    const token = bearerToken(request.headers.authorization)
    const index = token === undefined ? -1 : matchToken(digests, token)
    if (index === -1) {
      reply.header('www-authenticate', 'Bearer realm="bosun"')
      done(
        errors.UNAUTHORIZED(
          token === undefined ? 'missing bearer token: send Authorization: Bearer <token>' : 'invalid bearer token',
        ),
      )
      return
    }
    clientOf.set(request, `token:${index}`)
    done()
  }
}
