/** Builds the API on a FakeJobService for inject() tests; closes it in teardown. */
import type { InjectOptions, LightMyRequestResponse } from 'fastify'
import { buildApp, type BosunApp, type BuildAppOptions } from '../../api/app.js'
import { silentLogger } from '../../runner/logger.js'
import { FakeJobService } from './fake-service.js'
import { FakeClusterEvents } from './fake-events.js'

export interface TestApp {
  app: BosunApp
  service: FakeJobService
  inject: (opts: InjectOptions) => Promise<LightMyRequestResponse>
}

export async function makeApp(
  t: { teardown(fn: () => unknown): void },
  opts: Partial<Omit<BuildAppOptions, 'service'>> = {},
): Promise<TestApp> {
  const service = new FakeJobService()
  const app = buildApp({ service, logger: silentLogger(), events: new FakeClusterEvents(), ...opts })
  t.teardown(() => app.close())
  await app.ready()
  return { app, service, inject: (o) => app.inject(o) }
}

/** POST a raw JSON text (not re-serialised by inject). */
export function rawJson(url: string, body: string, headers: Record<string, string> = {}): InjectOptions {
  return { method: 'POST', url, payload: body, headers: { 'content-type': 'application/json', ...headers } }
}

/** Every error answer has exactly this shape. */
export function errorShape(res: LightMyRequestResponse): {
  statusCode: number
  code: string
  message: string
  details?: Record<string, unknown>
} {
  const body: Record<string, unknown> = res.json()
  const keys = Object.keys(body).sort()
  const expected = 'details' in body ? ['code', 'details', 'message', 'statusCode'] : ['code', 'message', 'statusCode']
  if (JSON.stringify(keys) !== JSON.stringify(expected)) throw new Error(`not the error shape: ${res.body}`)
  if (body.statusCode !== res.statusCode)
    throw new Error(`statusCode ${String(body.statusCode)} in body, ${res.statusCode} on the wire`)
  if (typeof body.code !== 'string' || !body.code.startsWith('BOSUN_ERR_') || typeof body.message !== 'string')
    throw new Error(`bad error fields: ${res.body}`)
  return body as never
}
