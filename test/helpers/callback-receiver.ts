/**
 * A real HTTP receiver of completion callbacks for end-to-end tests: records every POST (headers,
 * the parsed body, whether X-Bosun-Signature verifies with the secret) and answers by path:
 * `/ok` 200, `/flaky` 500 for the first two attempts of a delivery id then 200, `/redirect` 302 to
 * `/ok`. It can be started on a given port later (a receiver that was down comes back).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type Server } from 'node:http'

export interface Delivery {
  path: string
  jobId: string
  deliveryId: string
  attempt: number
  signed: boolean
  body: Record<string, unknown>
  at: number
}

export class CallbackReceiver {
  readonly deliveries: Delivery[] = []
  private server: Server | undefined
  private readonly flaky = new Map<string, number>()

  constructor(private readonly secret: string) {}

  async listen(port: number): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = []
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        const raw = Buffer.concat(chunks)
        const expected = Buffer.from(`sha256=${createHmac('sha256', this.secret).update(raw).digest('hex')}`)
        const got = Buffer.from(String(req.headers['x-bosun-signature'] ?? ''))
        const d: Delivery = {
          path: req.url ?? '',
          jobId: String(req.headers['x-bosun-job-id']),
          deliveryId: String(req.headers['x-bosun-delivery-id']),
          attempt: Number(req.headers['x-bosun-delivery-attempt']),
          signed: got.length === expected.length && timingSafeEqual(got, expected),
          body: JSON.parse(raw.toString('utf8')) as Record<string, unknown>,
          at: Date.now(),
        }
        this.deliveries.push(d)
        if (d.path === '/redirect') {
          res.writeHead(302, { location: '/ok' }).end()
          return
        }
        if (d.path === '/flaky') {
          const n = (this.flaky.get(d.deliveryId) ?? 0) + 1
          this.flaky.set(d.deliveryId, n)
          if (n <= 2) {
            res.writeHead(500).end('not yet')
            return
          }
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('thanks')
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
    this.server = server
  }

  of(jobId: string): Delivery[] {
    return this.deliveries.filter((d) => d.jobId === jobId)
  }

  async close(): Promise<void> {
    const s = this.server
    this.server = undefined
    if (!s) return
    s.closeAllConnections()
    await new Promise<void>((r) => s.close(() => r()))
  }
}
