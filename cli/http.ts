/**
 * The CLI's HTTP side: one JSON request to the bosun API (BOSUN_URL, bearer BOSUN_TOKEN), with the
 * API's error shape turned into a CliError carrying a clear message and an exit code, and the SSE
 * stream read as events. Kept apart from the commands so they read as what they show.
 */

/** Exit codes: 1 a request the API refused or did not find, 2 bad usage, 3 the API unreachable or failing. */
export const EXIT = { refused: 1, usage: 2, unreachable: 3 } as const

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message)
  }
}

export interface ApiClient {
  readonly url: string
  /** `T` is the API's answer on success (its OpenAPI shapes); anything else is a CliError. */
  request<T>(method: string, path: string, body?: unknown): Promise<T>
  /**
   * Server-Sent Events of `path` (each event's data and `id:`) until `signal` aborts or the server
   * ends the stream; `lastEventId` resumes after that event (the Last-Event-ID header).
   */
  stream(
    path: string,
    onEvent: (data: unknown, id: string | undefined) => void,
    signal: AbortSignal,
    lastEventId?: string,
  ): Promise<void>
}

export function apiClient(url: string, token: string | undefined): ApiClient {
  const base = url.replace(/\/+$/, '')
  const headers = (extra: Record<string, string> = {}) => ({
    ...extra,
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  })
  const send = async (method: string, path: string, init: RequestInit): Promise<Response> => {
    try {
      return await fetch(base + path, init)
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message
      throw new CliError(
        `cannot reach the bosun API at ${base} (${cause}); is it running? (BOSUN_URL)`,
        EXIT.unreachable,
      )
    }
  }
  return {
    url: base,
    async request<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await send(method, path, {
        method,
        headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      })
      const text = await res.text()
      let parsed: unknown
      try {
        parsed = text === '' ? undefined : JSON.parse(text)
      } catch {
        parsed = text
      }
      if (res.status >= 400) throw errorOf(res.status, parsed, path)
      return parsed as T
    },
    async stream(path, onEvent, signal, lastEventId) {
      const resume: Record<string, string> = lastEventId === undefined ? {} : { 'last-event-id': lastEventId }
      const res = await send('GET', path, {
        headers: headers({ accept: 'text/event-stream', ...resume }),
        signal,
      }).catch((err) => {
        if (signal.aborted) return undefined
        throw err
      })
      if (!res) return
      if (res.status >= 400) throw errorOf(res.status, await res.json().catch(() => undefined), path)
      const decoder = new TextDecoder()
      let buf = ''
      try {
        for await (const value of res.body as unknown as AsyncIterable<Uint8Array>) {
          buf += decoder.decode(value, { stream: true })
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            const lines = buf.slice(0, i).split('\n')
            buf = buf.slice(i + 2)
            const data = lines
              .filter((l) => l.startsWith('data: '))
              .map((l) => l.slice(6))
              .join('\n')
            const id = lines.find((l) => l.startsWith('id: '))?.slice(4)
            if (data !== '') onEvent(JSON.parse(data) as unknown, id)
          }
        }
      } catch (err) {
        if (!signal.aborted) throw err
      }
    },
  }
}

function errorOf(status: number, body: unknown, path: string): CliError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as { message?: unknown; code?: unknown }
  const message = typeof b.message === 'string' ? b.message : `HTTP ${status}`
  const code = typeof b.code === 'string' ? ` (${b.code})` : ''
  if (status === 401)
    return new CliError(`401 unauthorized: set BOSUN_TOKEN to one of the API's tokens${code}`, EXIT.refused)
  if (status === 404) return new CliError(`404 not found: ${message}${code}`, EXIT.refused)
  if (status >= 500) return new CliError(`${status} from the API on ${path}: ${message}${code}`, EXIT.unreachable)
  return new CliError(`${status}: ${message}${code}`, EXIT.refused)
}
