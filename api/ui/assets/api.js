/**
 * How the dashboard talks to the API: JSON GETs with the bearer token (kept in sessionStorage, sent
 * only as an `Authorization` header, never in a URL), a problem list the page shows as a banner
 * (unreachable, HTTP errors), and the live cluster events read from GET /cluster/events/stream.
 *
 * The stream is read with fetch() and a body reader, not EventSource: EventSource cannot send the
 * Authorization header. Frames are parsed here (id / event / data / retry lines, blank-line ends a
 * frame); after a drop it reconnects with `Last-Event-ID` (nothing retained is missed) and backoff.
 * Paths are relative: the page is /ui, so `cluster` is /cluster, also behind a proxy's path prefix.
 */

const TOKEN_KEY = 'bosun.apiToken'
const REQUEST_TIMEOUT_MS = 10_000
/** No byte for this long (the API sends a comment every 15 s) → the stream is dead: reconnect. */
const STREAM_STALL_MS = 45_000
const MAX_BACKOFF_MS = 15_000

/** The API wants a (different) token. */
export class AuthNeeded extends Error {}
/** No answer: the network, the API down, or a request timed out. */
export class Unreachable extends Error {}
/** The API answered an error status. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

const bus = new EventTarget()
const problems = new Map()
let needToken = false
/** The token when this browser refuses sessionStorage (then it lasts as long as the page). */
let memoryToken = null

export function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? memoryToken
  } catch {
    return memoryToken
  }
}

export function setToken(value) {
  try {
    sessionStorage.setItem(TOKEN_KEY, value)
  } catch {
    memoryToken = value
  }
  needToken = false
  bus.dispatchEvent(new Event('token'))
}

export function forgetToken() {
  memoryToken = null
  try {
    sessionStorage.removeItem(TOKEN_KEY)
  } catch {
    /* nothing stored */
  }
}

export const tokenNeeded = () => needToken

/** `fn(needed, refused)` whenever the API starts or stops asking for a token. */
export function onAuth(fn) {
  bus.addEventListener('auth', () => fn(needToken, token() !== null))
  bus.addEventListener('token', () => fn(needToken, false))
}

/** `fn([messages])` whenever the list of current problems changes. */
export function onProblems(fn) {
  bus.addEventListener('problems', () => fn([...new Set(problems.values())]))
}

/** Resolves when a token is entered. */
export function tokenEntered() {
  return new Promise((resolve) => bus.addEventListener('token', () => resolve(), { once: true }))
}

function problem(key, message) {
  if (message === undefined ? !problems.has(key) : problems.get(key) === message) return
  if (message === undefined) problems.delete(key)
  else problems.set(key, message)
  bus.dispatchEvent(new Event('problems'))
}

function authFailed() {
  needToken = true
  bus.dispatchEvent(new Event('auth'))
}

function headers(extra) {
  const h = new Headers(extra)
  const t = token()
  if (t) h.set('authorization', `Bearer ${t}`)
  return h
}

/**
 * GET a JSON route. Throws AuthNeeded (401), ApiError (other error status; `key` names it in the
 * banner unless `quiet` lists the status), or Unreachable (no answer; banner: unreachable).
 */
export async function getJson(path, { key = path, quiet = [] } = {}) {
  let res
  try {
    res = await fetch(path, {
      headers: headers({ accept: 'application/json' }),
      cache: 'no-store',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    })
  } catch (err) {
    problem('network', 'API unreachable, retrying…')
    throw new Unreachable(`GET /${path}: ${err?.message ?? err}`, { cause: err })
  }
  problem('network', undefined)
  if (res.status === 401) {
    authFailed()
    throw new AuthNeeded('the API wants a bearer token')
  }
  const body = await res.json().catch(() => undefined)
  if (res.ok && (typeof body !== 'object' || body === null)) {
    problem(key, `GET /${path} answered ${res.status} without JSON`)
    throw new ApiError(res.status, 'not JSON')
  }
  if (!res.ok) {
    const message = typeof body?.message === 'string' ? body.message : res.statusText
    if (!quiet.includes(res.status)) problem(key, `GET /${path} answered ${res.status}: ${message}`)
    throw new ApiError(res.status, message)
  }
  problem(key, undefined)
  return body
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Split an SSE byte stream into frames: calls `onFrame({ id, event, data, retry })` per frame.
 * Resolves when the stream ends; rejects on a read error.
 */
async function readFrames(body, onFrame, onBytes) {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buf = ''
  let frame = { data: [] }
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    onBytes()
    buf += decoder.decode(value, { stream: true })
    let nl
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl)
      buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1))
      if (line === '') {
        if (frame.data.length > 0 || frame.id !== undefined) onFrame({ ...frame, data: frame.data.join('\n') })
        frame = { data: [] }
        continue
      }
      if (line.startsWith(':')) continue // a comment (keep-alive)
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'data') frame.data.push(val)
      else if (field === 'id') frame.id = val
      else if (field === 'event') frame.event = val
      else if (field === 'retry' && /^\d+$/.test(val)) frame.retry = Number(val)
    }
  }
}

/**
 * Follow the live cluster events after `lastId` (undefined: only new ones). `onEvent(event)` per
 * event; `onState(state, detail)` with `connecting`, `live`, `down` (retrying) or `auth`.
 * Returns `stop()`.
 */
export function followEvents({ lastId, onEvent, onState }) {
  let lastEventId = lastId
  let stopped = false
  let controller
  let baseDelay = 1000
  let delay = baseDelay

  const connect = async () => {
    controller = new AbortController()
    let stall
    const arm = () => {
      clearTimeout(stall)
      stall = setTimeout(() => controller.abort(new Error('no data for 45 s')), STREAM_STALL_MS)
    }
    arm()
    try {
      const h = headers({ accept: 'text/event-stream' })
      if (lastEventId !== undefined) h.set('last-event-id', lastEventId)
      const res = await fetch('cluster/events/stream', { headers: h, cache: 'no-store', signal: controller.signal })
      problem('network', undefined)
      if (res.status === 401) {
        authFailed()
        return 'auth'
      }
      if (res.status === 400 && lastEventId !== undefined) {
        lastEventId = undefined // not an id this stream knows (a recreated stream): start from now
        return 'retry'
      }
      if (!res.ok || !res.body) throw new Error(`the event stream answered ${res.status}`)
      onState('live')
      problem('stream', undefined)
      delay = baseDelay
      await readFrames(
        res.body,
        (f) => {
          if (f.retry !== undefined) baseDelay = Math.min(Math.max(f.retry, 250), MAX_BACKOFF_MS)
          if (f.id !== undefined && f.id !== '') lastEventId = f.id
          if (f.data === '') return
          let event
          try {
            event = JSON.parse(f.data)
          } catch {
            return // not an event: ignore
          }
          if (event && typeof event === 'object' && typeof event.type === 'string') onEvent(event)
        },
        arm,
      )
      return 'ended'
    } finally {
      clearTimeout(stall)
    }
  }

  void (async () => {
    while (!stopped) {
      onState('connecting')
      let outcome
      try {
        outcome = await connect()
      } catch (err) {
        if (stopped) return
        if (err instanceof TypeError) problem('network', 'API unreachable, retrying…')
        outcome = 'error'
      }
      if (stopped) return
      if (outcome === 'auth') {
        onState('auth')
        await tokenEntered()
        continue
      }
      onState('down', `reconnecting in ${Math.round(delay / 1000)} s`)
      if (outcome !== 'retry') problem('stream', 'live events interrupted, reconnecting…')
      await sleep(delay * (0.8 + Math.random() * 0.4))
      delay = Math.min(delay * 2, MAX_BACKOFF_MS)
    }
  })()

  return () => {
    stopped = true
    controller?.abort()
  }
}
