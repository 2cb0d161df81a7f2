/**
 * A minimal keep-alive JSON client on node:http (cheaper per request than fetch, so the benchmark
 * process measures the API rather than itself).
 */
import { Agent, request } from 'node:http'

export interface HttpAnswer<T = unknown> {
  status: number
  /** Parsed JSON body (undefined when the body is not JSON); `T` is what the caller expects, not checked. */
  body: T | undefined
  headers: Record<string, string | string[] | undefined>
}

export class JsonClient {
  private readonly agent: Agent
  private readonly host: string
  private readonly port: number

  /** `maxSockets`: concurrent connections kept to the API. */
  constructor(baseUrl: string, maxSockets = 64) {
    const u = new URL(baseUrl)
    this.host = u.hostname
    this.port = Number(u.port)
    this.agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })
  }

  /** POST a JSON body; rejects only on a network error or after timeoutMs. */
  post<T = unknown>(path: string, body: unknown, timeoutMs = 30_000): Promise<HttpAnswer<T>> {
    const payload = Buffer.from(JSON.stringify(body))
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: this.host,
          port: this.port,
          path,
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': payload.length },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            let parsed: unknown
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
            } catch {
              parsed = undefined
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T | undefined, headers: res.headers })
          })
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`POST ${path} timed out after ${timeoutMs} ms`)))
      req.on('error', reject)
      req.end(payload)
    })
  }

  /** GET a path; rejects only on a network error or after timeoutMs. */
  get(path: string, timeoutMs = 30_000): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: this.host, port: this.port, path, method: 'GET', agent: this.agent, timeout: timeoutMs },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => {
            let parsed: unknown
            try {
              parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
            } catch {
              parsed = undefined
            }
            resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers })
          })
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)))
      req.on('error', reject)
      req.end()
    })
  }

  close(): void {
    this.agent.destroy()
  }
}
