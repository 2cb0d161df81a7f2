/** In-memory ClusterEventsView for inject() tests of the event routes (the real one: api/cluster-events.ts). */
import type { ClusterEventsView, EventPage, EventQuery } from '../../api/cluster-events.js'
import { parseEventCursor } from '../../api/cluster-events.js'
import { leadershipTerms, type LeadershipTerm } from '../../runner/events/leadership.js'
import type { ClusterEvent } from '../../runner/events/model.js'

export class FakeClusterEvents implements ClusterEventsView {
  readonly events: ClusterEvent[] = []
  private readonly followers = new Set<{ after: number; onEvent: (e: ClusterEvent) => void }>()

  /** Append an event (its id is its position, from 1) and tell live followers. */
  add(e: Omit<ClusterEvent, 'id'>): ClusterEvent {
    const ev: ClusterEvent = { ...e, id: String(this.events.length + 1) }
    this.events.push(ev)
    for (const f of this.followers) if (Number(ev.id) > f.after) f.onEvent(ev)
    return ev
  }

  async list(q: EventQuery): Promise<EventPage> {
    const below = q.cursor === undefined ? Infinity : parseEventCursor(q.cursor)
    const since = q.since === undefined ? -Infinity : Date.parse(q.since)
    const match = this.events
      .filter((e) => Number(e.id) < below && (q.type === undefined || e.type === q.type) && Date.parse(e.at) >= since)
      .reverse()
    const page = match.slice(0, q.limit)
    return match.length > page.length ? { events: page, next: page[page.length - 1]!.id } : { events: page }
  }

  async leadership(): Promise<LeadershipTerm[]> {
    return leadershipTerms(this.events)
  }

  follow(afterSeq: number | undefined, onEvent: (e: ClusterEvent) => void): { stop(): Promise<void> } {
    const f = { after: afterSeq ?? this.events.length, onEvent }
    for (const e of this.events) if (Number(e.id) > f.after) onEvent(e)
    this.followers.add(f)
    return { stop: async () => void this.followers.delete(f) }
  }

  get following(): number {
    return this.followers.size
  }
}
