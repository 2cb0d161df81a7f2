/**
 * The launcher's live event log: after the cluster is ready, `npm start` follows the API's cluster
 * events (GET /cluster/events/stream, the SSE stream the CLI and the dashboard read) and prints one
 * line per event; when a new boss starts dispatching (`boss.active`) it adds a highlighted line
 * from GET /cluster/leadership: who took over from whom, why the old term ended, and the gap.
 * Events since the launcher started are shown first; a dropped stream is resumed after the last
 * event seen (Last-Event-ID), trying each api process in turn, so nothing is shown twice or missed.
 */
import { leadershipChangeLine, eventLine } from '../../cli/format.js'
import { apiClient, type ApiClient } from '../../cli/http.js'
import type { EventPage } from '../../api/cluster-events.js'
import type { LeadershipTerm } from '../../runner/events/leadership.js'
import type { ClusterEvent } from '../../runner/events/model.js'
import { retryDelay, sleep } from '../../runner/retry.js'

export interface EventFeedOptions {
  apiUrls: readonly string[]
  token: string | undefined
  /** Events at or after this time are shown (the launcher's start). */
  since: Date
  signal: AbortSignal
  /** One line; `highlight` for a leadership change. */
  print(line: string, highlight: boolean): void
  /** Longest wait between reconnects. @defaultValue 2000 ms */
  maxRetryMs?: number
}

const isEvent = (x: unknown): x is ClusterEvent => {
  const e = x as Partial<ClusterEvent> | null
  return typeof e === 'object' && e !== null && typeof e.type === 'string' && typeof e.at === 'string' && !!e.source
}

/** Follow the cluster events until `signal` aborts. Never throws. */
export async function followClusterEvents(o: EventFeedOptions): Promise<void> {
  let lastId: string | undefined
  let failures = 0
  let turn = 0
  const show = async (api: ApiClient, data: unknown) => {
    if (!isEvent(data)) return
    o.print(eventLine(data), data.type.startsWith('boss.'))
    if (data.type === 'boss.active' && data.epoch !== undefined) await showChange(api, data.epoch, o)
  }
  while (!o.signal.aborted && o.apiUrls.length > 0) {
    const api = apiClient(o.apiUrls[turn % o.apiUrls.length]!, o.token)
    try {
      if (lastId === undefined) {
        const q = new URLSearchParams({ since: o.since.toISOString(), limit: '1000' })
        const page = await api.request<EventPage>('GET', `/cluster/events?${q.toString()}`)
        lastId = page.events[0]?.id ?? ''
        for (const e of [...page.events].reverse()) await show(api, e)
      }
      const queue: Promise<void>[] = []
      await api.stream(
        '/cluster/events/stream',
        (data, id) => {
          failures = 0
          if (id !== undefined) lastId = id
          queue.push(show(api, data))
        },
        o.signal,
        lastId === '' ? undefined : lastId,
      )
      await Promise.all(queue)
    } catch {
      failures++
      turn++
    }
    if (!o.signal.aborted) await sleep(retryDelay(failures, o.maxRetryMs ?? 2000))
  }
}

/** The highlighted summary of the term `epoch` (best effort: nothing when the API cannot say). */
async function showChange(api: ApiClient, epoch: number, o: EventFeedOptions): Promise<void> {
  try {
    const { terms } = await api.request<{ terms: LeadershipTerm[] }>('GET', '/cluster/leadership')
    const i = terms.findIndex((t) => t.epoch === epoch)
    if (i < 0) return
    o.print(`leadership ${leadershipChangeLine(terms[i]!, terms[i + 1])}`, true)
  } catch {
    /* the event line above already says it */
  }
}
