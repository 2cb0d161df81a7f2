/**
 * The CLI's commands over the HTTP API (cli/http.ts): each prints a human view, or the API's JSON
 * with --json for scripts. `top` and `--follow` / `--watch` keep running until Ctrl-C.
 */
import { readFileSync } from 'node:fs'
import { CliError, EXIT, type ApiClient } from './http.js'
import { clock, duration, eventLine, table } from './format.js'
import type { publicJob } from '../jobs/model.js'
import type { ClusterLoadView, ClusterView } from '../api/service.js'
import type { EventPage } from '../api/cluster-events.js'
import type { LeadershipTerm } from '../runner/events/leadership.js'
import type { ClusterEvent } from '../runner/events/model.js'

type JobOut = ReturnType<typeof publicJob>
interface JobPageOut {
  jobs: JobOut[]
  next?: string
}

export interface Out {
  json: boolean
  print(text: string): void
  /** Aborted on Ctrl-C (follow, watch, top). */
  signal: AbortSignal
}

const show = (out: Out, body: unknown, human: () => string) =>
  out.print(out.json ? JSON.stringify(body, null, 2) : human())

function jobView(j: JobOut): string {
  const lines = [
    `${j.id}  ${j.function}  ${j.state}  attempt ${j.attempts}/${j.maxAttempts}${j.worker ? `  on ${j.worker}` : ''}`,
    `created ${clock(j.createdAt)}  started ${clock(j.startedAt)}  finished ${clock(j.finishedAt)}`,
  ]
  if (j.result !== undefined) lines.push(`result ${JSON.stringify(j.result)}`)
  if (j.error) lines.push(`error ${j.error.code ?? ''} ${j.error.message}`.trimEnd())
  return lines.join('\n')
}

function payloadOf(arg: string | undefined): unknown {
  if (arg === undefined) return undefined
  const text = arg.startsWith('@') ? readFileSync(arg.slice(1), 'utf8') : arg
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new CliError(`--payload is not JSON: ${(err as Error).message}`, EXIT.usage)
  }
}

const intOpt = (name: string, v: string | undefined): number | undefined => {
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new CliError(`--${name} must be a whole number ≥ 0`, EXIT.usage)
  return n
}

export async function submit(api: ApiClient, out: Out, fn: string, o: Record<string, string | boolean>) {
  const body = {
    function: fn,
    ...(o.payload === undefined ? {} : { payload: payloadOf(String(o.payload)) }),
    ...(o.priority === undefined ? {} : { priority: Number(o.priority) }),
    ...(o['timeout-ms'] === undefined ? {} : { timeoutMs: intOpt('timeout-ms', String(o['timeout-ms'])) }),
    ...(o['max-attempts'] === undefined ? {} : { maxAttempts: intOpt('max-attempts', String(o['max-attempts'])) }),
    ...(o['delay-ms'] === undefined ? {} : { delayMs: intOpt('delay-ms', String(o['delay-ms'])) }),
    ...(o.key === undefined ? {} : { idempotencyKey: String(o.key) }),
  }
  const wait = o.wait === undefined ? undefined : intOpt('wait', String(o.wait))
  const job = await api.request<JobOut>('POST', wait === undefined ? '/jobs' : `/jobs?wait=${wait}`, body)
  show(out, job, () => jobView(job))
}

export async function get(api: ApiClient, out: Out, id: string) {
  const job = await api.request<JobOut>('GET', `/jobs/${encodeURIComponent(id)}`)
  show(out, job, () => jobView(job))
}

export async function cancel(api: ApiClient, out: Out, id: string) {
  const job = await api.request<JobOut>('DELETE', `/jobs/${encodeURIComponent(id)}`)
  show(out, job, () => jobView(job))
}

export async function jobs(api: ApiClient, out: Out, o: Record<string, string | boolean>) {
  const q = new URLSearchParams()
  for (const k of ['state', 'function', 'limit', 'cursor']) if (typeof o[k] === 'string') q.set(k, o[k])
  const once = async () => {
    const body = await api.request<JobPageOut>('GET', `/jobs?${q.toString()}`)
    show(
      out,
      body,
      () =>
        table(
          ['ID', 'FUNCTION', 'STATE', 'ATTEMPTS', 'WORKER', 'CREATED', 'FINISHED'],
          body.jobs.map((j) => [
            j.id,
            j.function,
            j.state,
            `${j.attempts}/${j.maxAttempts}`,
            j.worker ?? '-',
            clock(j.createdAt),
            clock(j.finishedAt),
          ]),
        ) + (body.next ? `\nmore: --cursor ${body.next}` : ''),
    )
  }
  await repeat(out, o.watch === true, once)
}

function clusterView(c: ClusterView): string {
  const boss = c.boss
    ? `boss ${c.boss.id} (${c.boss.host} pid ${c.boss.pid})  epoch ${c.boss.epoch}  ` +
      `for ${duration(Date.now() - Date.parse(c.boss.since))}`
    : 'boss: none elected'
  const workers = table(
    ['WORKER', 'HOST', 'PID', 'RUNNING', 'CAPACITY', 'WAITING', 'FUNCTIONS'],
    c.workers.map((w) => [
      w.id,
      w.host,
      String(w.pid),
      String(w.running),
      String(w.capacity),
      String(w.waiting ?? 0),
      w.functions.join(','),
    ]),
  )
  return `${boss}\n${workers}`
}

export async function cluster(api: ApiClient, out: Out) {
  const view = await api.request<ClusterView>('GET', '/cluster')
  show(out, view, () => clusterView(view))
}

export async function events(api: ApiClient, out: Out, o: Record<string, string | boolean>) {
  if (o.follow === true) {
    await api.stream(
      '/cluster/events/stream',
      (e) => out.print(out.json ? JSON.stringify(e) : eventLine(e as ClusterEvent)),
      out.signal,
    )
    return
  }
  const q = new URLSearchParams()
  for (const k of ['type', 'since', 'limit', 'cursor']) if (typeof o[k] === 'string') q.set(k, o[k])
  const body = await api.request<EventPage>('GET', `/cluster/events?${q.toString()}`)
  show(out, body, () => body.events.map(eventLine).join('\n') + (body.next ? `\nmore: --cursor ${body.next}` : ''))
}

export async function leadership(api: ApiClient, out: Out) {
  const body = await api.request<{ terms: LeadershipTerm[] }>('GET', '/cluster/leadership')
  show(out, body, () =>
    table(
      ['EPOCH', 'BOSS', 'START', 'END', 'ENDED', 'AFTER', 'GAP BEFORE', 'TAKEOVER'],
      body.terms.map((t) => [
        String(t.epoch),
        t.boss.id,
        clock(t.start),
        t.end ? clock(t.end) : 'now',
        t.ended ?? '-',
        t.after ?? '-',
        duration(t.gapBeforeMs),
        duration(t.takeover?.takeoverMs),
      ]),
    ),
  )
}

/** A live view: the cluster, refreshed every second, and the latest cluster events as they come. */
/** The load line of `top`: queue, running, and throughput since the previous report of the same term. */
function loadLine(now: ClusterLoadView, before: ClusterLoadView | undefined): string {
  if (now.at === null) return 'load: no report from a boss yet'
  let rate = '-'
  if (before?.at && before.epoch === now.epoch && now.at !== before.at) {
    rate = ((now.finished - before.finished) / ((Date.parse(now.at) - Date.parse(before.at)) / 1000)).toFixed(1)
  }
  return `queued ${now.queued}  running ${now.running}  finished this term ${now.finished}  throughput ${rate} jobs/s`
}

export async function top(api: ApiClient, out: Out) {
  const recent: string[] = []
  let last = ''
  // the last two distinct load reports: the throughput is the change between them
  let current: ClusterLoadView | undefined
  let previous: ClusterLoadView | undefined
  const render = async () => {
    const [view, load] = await Promise.all([
      api.request<ClusterView>('GET', '/cluster'),
      api.request<ClusterLoadView>('GET', '/cluster/stats'),
    ])
    if (load.at !== current?.at) [previous, current] = [current, load]
    const loadText = loadLine(load, previous)
    const title = `bosun top — ${api.url}  ${clock(new Date().toISOString())}`
    const screen = `${title}\n\n${clusterView(view)}\n${loadText}\n\nlatest events\n${recent.join('\n')}`
    if (screen !== last) out.print(`\x1b[2J\x1b[H${screen}`)
    last = screen
  }
  const history = await api.request<EventPage>('GET', '/cluster/events?limit=12')
  recent.push(...history.events.map(eventLine).reverse())
  const after = history.events[0]?.id
  const follow = api.stream(
    after === undefined ? '/cluster/events/stream' : `/cluster/events/stream?lastEventId=${after}`,
    (e) => {
      recent.push(eventLine(e as ClusterEvent))
      if (recent.length > 12) recent.shift()
    },
    out.signal,
  )
  await repeat(out, true, render)
  await follow
}

/** Run `fn` once, or every second until Ctrl-C. */
async function repeat(out: Out, again: boolean, fn: () => Promise<void>): Promise<void> {
  await fn()
  while (again && !out.signal.aborted) {
    await new Promise((r) => setTimeout(r, 1000))
    if (!out.signal.aborted) await fn()
  }
}
