/**
 * The dashboard's main module: what is fetched when, and where it is drawn.
 *
 * - GET /cluster every second: the boss panel (or "no boss — leaderless since …") and the workers;
 * - GET /cluster/stats every second: queued / running / finished, throughput (Δfinished/Δt) sparklines;
 * - GET /cluster/leadership (+ the job.redispatched events, counted per epoch): the timeline, fetched
 *   again at once on every live `boss.*` event and every 15 s;
 * - GET /cluster/events?limit=50, then the live stream from the newest of them: the events list;
 * - GET /jobs?limit=20 every 2 s, and GET /jobs/:id for the job clicked.
 * A 401 anywhere shows the token form; everything waits for a token, then resumes.
 */
import {
  ApiError,
  AuthNeeded,
  followEvents,
  forgetToken,
  getJson,
  onAuth,
  onProblems,
  setToken,
  token,
  tokenEntered,
  tokenNeeded,
  Unreachable,
} from './api.js'
import { LoadHistory } from './charts.js'
import { clock, h, isFinal, put } from './dom.js'
import { eventItem, renderBoss, renderJobDetail, renderJobs, renderStats, renderWorkers } from './panels.js'
import { latestFailover, timeline } from './timeline.js'

const $ = (id) => document.querySelector(`[data-testid="${id}"]`)
const MAX_EVENTS = 50
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const state = {
  cluster: undefined,
  /** When this page first saw no boss (a fallback for "leaderless since"). */
  noBossSeen: undefined,
  stats: undefined,
  statsUnavailable: false,
  history: new LoadHistory(),
  terms: undefined,
  redispatched: new Map(),
  eventIds: new Set(),
  jobsKey: '',
  selected: undefined,
}

/** An expected failure (already shown as a banner or the token form), not a bug. */
const expected = (err) => err instanceof AuthNeeded || err instanceof ApiError || err instanceof Unreachable

/**
 * `task` every `ms`, counted from the end of each run, skipped while a token is needed. The returned
 * function runs it now (or right after the run in progress).
 */
function every(ms, task) {
  let timer
  let running = false
  let again = false
  const run = async () => {
    clearTimeout(timer)
    if (running) {
      again = true
      return
    }
    running = true
    try {
      if (!tokenNeeded()) await task()
    } catch (err) {
      if (!expected(err)) console.error(err)
    } finally {
      running = false
    }
    if (again) {
      again = false
      return run()
    }
    timer = setTimeout(run, ms)
  }
  return run
}

function updated() {
  $('updated').textContent = `updated ${clock(new Date().toISOString())}`
}

// ---- the boss and the workers --------------------------------------------------------------------

function leaderlessSince() {
  const last = state.terms?.[0]
  return last?.end ?? state.noBossSeen
}

function drawBoss() {
  if (state.cluster) renderBoss($('boss'), state.cluster.boss, leaderlessSince())
}

let workersKey = ''
const pollCluster = every(1000, async () => {
  const c = await getJson('cluster')
  state.cluster = c
  if (c.boss) state.noBossSeen = undefined
  else state.noBossSeen ??= new Date().toISOString()
  // a boss the timeline does not show yet: the stream may be reconnecting, ask anyway
  const known = state.terms?.some((t) => t.epoch === c.boss?.epoch)
  if (c.boss && state.terms && !known && Date.now() - leadershipAt > 3000) kickLeadership(0)
  drawBoss()
  const key = JSON.stringify([c.workers, c.boss?.id])
  if (key !== workersKey) {
    workersKey = key
    renderWorkers($('workers'), c.workers, c.boss?.id)
    $('worker-count').textContent = `(${c.workers.length})`
  }
  updated()
})

// ---- throughput and queue depth ------------------------------------------------------------------

const pollStats = every(1000, async () => {
  try {
    state.stats = await getJson('cluster/stats', { quiet: [404] })
    state.statsUnavailable = false
    state.history.add(state.stats)
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err
    state.statsUnavailable = true
  }
  renderStats($('stats'), state.stats, state.history, { unavailable: state.statsUnavailable })
})

// ---- the leadership timeline ---------------------------------------------------------------------

function drawTimeline() {
  if (!state.terms) return
  const box = $('timeline')
  const windowMs = Number($('timeline-window').value) || 0
  const width = Math.max(600, box.clientWidth - 4)
  put(
    box,
    timeline(state.terms, state.redispatched, { width, windowMs }),
    h('p', { class: 'small muted', 'data-testid': 'timeline-summary' }, latestFailover(state.terms)),
  )
}

let leadershipAt = 0
const pollLeadership = every(15_000, async () => {
  leadershipAt = Date.now()
  const [lead, redis] = await Promise.all([
    getJson('cluster/leadership'),
    getJson('cluster/events?type=job.redispatched&limit=1000', { key: 'redispatched' }),
  ])
  const perEpoch = new Map()
  for (const e of redis.events) {
    const n = typeof e.data?.jobs === 'number' ? e.data.jobs : 0
    if (e.epoch !== undefined) perEpoch.set(e.epoch, (perEpoch.get(e.epoch) ?? 0) + n)
  }
  state.terms = lead.terms
  state.redispatched = perEpoch
  drawTimeline()
  drawBoss()
})

let leadershipTimer
function kickLeadership(delayMs = 100) {
  clearTimeout(leadershipTimer)
  leadershipTimer = setTimeout(pollLeadership, delayMs)
}

// ---- cluster events, live ------------------------------------------------------------------------

function addEvent(e, live) {
  if (typeof e.id !== 'string' || state.eventIds.has(e.id)) return
  state.eventIds.add(e.id)
  const list = $('events')
  list.prepend(eventItem(e))
  while (list.children.length > MAX_EVENTS) {
    state.eventIds.delete(list.lastElementChild.dataset.eventId)
    list.lastElementChild.remove()
  }
  if (!live) return
  if (e.type.startsWith('boss.')) {
    kickLeadership()
    void pollCluster()
  } else if (e.type.startsWith('worker.')) void pollCluster()
  else if (e.type === 'job.redispatched') kickLeadership(300)
}

const STREAM_TEXT = { connecting: 'connecting', live: 'live', down: 'interrupted', auth: 'waiting for a token' }

async function startEvents() {
  let page
  for (let delay = 1000; ; delay = Math.min(delay * 2, 15_000)) {
    try {
      page = await getJson(`cluster/events?limit=${MAX_EVENTS}`, { key: 'events' })
      break
    } catch (err) {
      if (!expected(err)) console.error(err)
      if (err instanceof AuthNeeded) await tokenEntered()
      else await sleep(delay)
    }
  }
  for (const e of [...page.events].reverse()) addEvent(e, false)
  followEvents({
    lastId: page.events[0]?.id,
    onEvent: (e) => addEvent(e, true),
    onState: (s, detail) => {
      const el = $('stream-status')
      el.dataset.state = s
      el.textContent = `events: ${STREAM_TEXT[s] ?? s}${detail ? `, ${detail}` : ''}`
    },
  })
}

// ---- jobs ----------------------------------------------------------------------------------------

const pollJobs = every(2000, async () => {
  const page = await getJson('jobs?limit=20', { key: 'jobs' })
  const key = JSON.stringify([page.jobs, state.selected])
  if (key === state.jobsKey) return
  state.jobsKey = key
  renderJobs($('jobs'), page.jobs, state.selected, pick)
})

let shownJob
const pollJob = every(2000, async () => {
  const id = state.selected
  if (id === undefined || (shownJob?.id === id && isFinal(shownJob.state))) return
  try {
    const job = await getJson(`jobs/${encodeURIComponent(id)}`, { key: 'job', quiet: [404] })
    if (id !== state.selected) return
    shownJob = job
    renderJobDetail($('job-detail'), job)
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err
    renderJobDetail($('job-detail'), null, `job ${id} is not stored (any more)`)
  }
})

function pick(id) {
  state.selected = id
  for (const tr of $('jobs').querySelectorAll('tr[data-job-id]'))
    tr.classList.toggle('selected', tr.dataset.jobId === id)
  state.jobsKey = ''
  put($('job-detail'), h('p', { class: 'muted' }, `loading ${id}…`))
  void pollJob()
}

// ---- token, banner, start ------------------------------------------------------------------------

const pollers = [pollCluster, pollStats, pollLeadership, pollJobs, pollJob]

function setupAuth() {
  const form = $('auth')
  const input = form.querySelector('input')
  const forget = $('forget-token')
  forget.hidden = token() === null
  onAuth((needed, refused) => {
    form.hidden = !needed
    $('auth-note').textContent = refused
      ? 'the API refused that token; enter another (kept in this tab only)'
      : 'kept in this tab only (sessionStorage)'
    if (needed) input.focus()
  })
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const value = input.value.trim()
    if (value === '') return
    input.value = ''
    setToken(value)
    forget.hidden = false
    for (const p of pollers) void p()
  })
  forget.addEventListener('click', () => {
    forgetToken()
    location.reload()
  })
}

function setupBanner() {
  const banner = $('banner')
  onProblems((list) => {
    banner.hidden = list.length === 0
    banner.textContent = list.join(' · ')
    document.body.classList.toggle('degraded', list.length > 0)
  })
}

function start() {
  setupAuth()
  setupBanner()
  $('timeline-window').addEventListener('change', drawTimeline)
  let resize
  window.addEventListener('resize', () => {
    clearTimeout(resize)
    resize = setTimeout(drawTimeline, 150)
  })
  // the clock moves: "boss for", "leaderless since" and the current term's bar
  setInterval(() => {
    drawBoss()
    if (state.terms?.[0] && !state.terms[0].end) drawTimeline()
  }, 1000)
  for (const p of pollers) void p()
  void startEvents()
}

start()
