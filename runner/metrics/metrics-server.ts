/**
 * A small HTTP server for a process without an HTTP API (a worker's METRICS_PORT): `GET /metrics`
 * answers the process's metrics in the Prometheus text format, anything else 404. node:http only
 * (no framework for one route). `close()` is idempotent and does not wait for idle keep-alive
 * connections (a scraper keeps one open), so it fits in a process's stop budget.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '../logger.js'
import type { ProcessMetrics } from './process-metrics.js'

export class MetricsServer {
  private closing: Promise<void> | undefined

  private constructor(
    private readonly server: Server,
    private readonly log: Logger,
  ) {}

  /** Listen on `host:port` (0: any free port); rejects when the port cannot be bound. */
  static async listen(metrics: ProcessMetrics, port: number, host: string, log: Logger): Promise<MetricsServer> {
    const server = createServer((req, res) => void answer(metrics, req, res, log))
    server.keepAliveTimeout = 65_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    server.on('error', (err) => log.warn({ err }, 'metrics server error'))
    return new MetricsServer(server, log)
  }

  /** The port it listens on. */
  get port(): number {
    return (this.server.address() as AddressInfo).port
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close((err) => {
        if (err) this.log.warn({ err }, 'closing the metrics server failed')
        resolve()
      })
      this.server.closeAllConnections()
    })
    return this.closing
  }
}

async function answer(metrics: ProcessMetrics, req: IncomingMessage, res: ServerResponse, log: Logger): Promise<void> {
  const path = (req.url ?? '').split('?', 1)[0]
  if (path !== '/metrics') return send(res, 404, 'text/plain; charset=utf-8', 'not found: try GET /metrics\n')
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD')
    return send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n')
  }
  try {
    const text = await metrics.text()
    send(res, 200, metrics.contentType, req.method === 'HEAD' ? '' : text)
  } catch (err) {
    log.warn({ err }, 'collecting metrics failed')
    send(res, 500, 'text/plain; charset=utf-8', 'collecting metrics failed\n')
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store' })
  res.end(body)
}
