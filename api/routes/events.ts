/**
 * Cluster events over HTTP: GET /cluster/events (newest first, paged), GET /cluster/events/stream
 * (the same, live, as Server-Sent Events: `id` is the event's id, so a client that reconnects with
 * `Last-Event-ID` — browsers' EventSource does it by itself — misses nothing still retained), and
 * GET /cluster/leadership (the boss terms rebuilt from the events: holder, start, end, why it
 * ended, the failover gap before it).
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { ServerResponse } from 'node:http'
import { errors } from '../../runner/errors.js'
import type { ClusterEventsView } from '../cluster-events.js'
import {
  DEFAULT_EVENT_LIMIT,
  EventPageSchema,
  EventQuerySchema,
  EventStreamQuerySchema,
  LeadershipSchema,
} from '../event-schemas.js'
import { errorResponses, security } from './responses.js'

export interface EventRoutesOptions {
  events: ClusterEventsView
  authOn: boolean
}

/** A comment line this often keeps proxies and idle timeouts from closing a quiet stream. */
const HEARTBEAT_MS = 15_000
const EVENT_ID = /^\d{1,16}$/

export const eventRoutes: FastifyPluginAsyncTypebox<EventRoutesOptions> = async (app, opts) => {
  const open = new Set<ServerResponse>()
  app.addHook('preClose', async () => {
    for (const res of open) res.end()
  })

  app.get(
    '/cluster/events',
    {
      schema: {
        tags: ['cluster'],
        ...security(opts.authOn),
        summary: 'Cluster events, newest first (boss elected / active / deposed, workers, fencing, connections)',
        querystring: EventQuerySchema,
        response: { 200: EventPageSchema, ...errorResponses(400, 401, 503) },
      },
    },
    async (request) => {
      const q = request.query
      return opts.events.list({
        limit: q.limit ?? DEFAULT_EVENT_LIMIT,
        ...(q.since === undefined ? {} : { since: q.since }),
        ...(q.type === undefined ? {} : { type: q.type }),
        ...(q.cursor === undefined ? {} : { cursor: q.cursor }),
      })
    },
  )

  app.get(
    '/cluster/leadership',
    {
      schema: {
        tags: ['cluster'],
        ...security(opts.authOn),
        summary: 'Every boss term the retained events know, newest first, with the failover gap before each',
        response: { 200: LeadershipSchema, ...errorResponses(401, 503) },
      },
    },
    async () => ({ terms: await opts.events.leadership() }),
  )

  app.get(
    '/cluster/events/stream',
    {
      schema: {
        tags: ['cluster'],
        ...security(opts.authOn),
        summary: 'Cluster events live, as Server-Sent Events (resume with Last-Event-ID)',
        querystring: EventStreamQuerySchema,
        response: { 200: { description: 'text/event-stream', type: 'string' }, ...errorResponses(400, 401) },
      },
    },
    async (request, reply) => {
      const header = request.headers['last-event-id']
      const resume = typeof header === 'string' && header !== '' ? header : request.query.lastEventId
      if (resume !== undefined && !EVENT_ID.test(resume))
        throw errors.VALIDATION('Last-Event-ID is not an event id from this stream')
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      })
      res.write('retry: 2000\n\n')
      request.raw.socket.setTimeout(0) // a quiet stream is not an idle connection
      open.add(res)
      const follow = opts.events.follow(resume === undefined ? undefined : Number(resume), (e) => {
        res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)
      })
      const beat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS)
      beat.unref()
      res.on('close', () => {
        clearInterval(beat)
        open.delete(res)
        void follow.stop()
      })
    },
  )
}
