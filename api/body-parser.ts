/**
 * The only body parser: `application/json`, through Fastify's secure-json-parse with
 * `__proto__` and `constructor.prototype` keys rejected (400), never silently removed: a job
 * payload must reach the function exactly as sent, or be refused. Every other content type
 * (text/plain included — Fastify accepts it by default) is a 415.
 */
import type { FastifyInstance } from 'fastify'
import { errors } from '../runner/errors.js'

/** Deepest nesting of arrays/objects accepted in a body: deeper JSON overflows recursive code downstream. */
export const MAX_JSON_DEPTH = 64

/** Nesting depth of a JSON text, counted without parsing (strings skipped); stops past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
    } else if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      if (++depth > limit) return true
    } else if (c === 125 || c === 93) depth--
  }
  return false
}

export function installJsonParser(app: FastifyInstance): void {
  app.removeAllContentTypeParsers()
  const secureParse = app.getDefaultJsonParser('error', 'error')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8')
    // `curl -X DELETE -H 'content-type: application/json'` sends no body: that is not an error.
    if (text.length === 0 && request.method !== 'POST') {
      done(null, undefined)
      return
    }
    if (jsonDepthExceeds(text, MAX_JSON_DEPTH)) {
      done(errors.BAD_JSON(`body nests deeper than ${MAX_JSON_DEPTH} levels`), undefined)
      return
    }
    // The default parser is the callback form (returns nothing); its type also allows the promise form.
    void secureParse(request, text, (err, value) => {
      if (err === null) return done(null, value)
      if ((err as { code?: string }).code !== 'FST_ERR_CTP_INVALID_JSON_BODY') return done(err, undefined)
      // secure-json-parse failed: tell a syntax error from a forbidden key, for a clear message.
      try {
        JSON.parse(text)
        done(errors.BAD_JSON('body contains a forbidden "__proto__" or "constructor.prototype" key'), undefined)
      } catch (syntax) {
        done(errors.BAD_JSON(`body is not valid JSON: ${(syntax as Error).message}`), undefined)
      }
    })
  })
}
