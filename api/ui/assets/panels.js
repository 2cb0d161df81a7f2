/**
 * The dashboard's panels, each a function from API data to elements: the boss (or the leaderless
 * state), the workers, throughput and queue depth, recent jobs, one job's detail, and cluster events.
 * Pure rendering: app.js fetches and calls these; all text goes in through textContent.
 */
import { sparkline } from './charts.js'
import { age, clock, count, duration, eventWhat, h, isFinal, put, shortJson, text } from './dom.js'

/** GET /cluster's boss, or the leaderless state since `leaderlessSince` (ISO, may be undefined). */
export function renderBoss(el, boss, leaderlessSince, now = Date.now()) {
  if (!boss) {
    el.dataset.state = 'leaderless'
    delete el.dataset.bossId
    delete el.dataset.epoch
    const since = leaderlessSince ? ` since ${clock(leaderlessSince)} (${age(leaderlessSince, now)})` : ''
    put(
      el,
      h('p', { class: 'leaderless' }, `no boss — leaderless${since}`),
      h('p', { class: 'muted small' }, 'jobs are accepted but not dispatched until a worker is elected'),
    )
    return
  }
  el.dataset.state = 'boss'
  el.dataset.bossId = boss.id
  el.dataset.epoch = String(boss.epoch)
  put(
    el,
    h('p', { class: 'boss-id' }, h('strong', { 'data-testid': 'boss-id' }, text(boss.id)), ` epoch ${boss.epoch}`),
    h(
      'dl',
      { class: 'kv' },
      h('dt', {}, 'host'),
      h('dd', {}, `${text(boss.host)} (pid ${text(boss.pid)})`),
      h('dt', {}, 'boss for'),
      h('dd', { 'data-testid': 'boss-for' }, `${age(boss.since, now)} (since ${clock(boss.since)})`),
    ),
  )
}

/** Jobs a worker holds ahead of a free slot (prefetch), when there are any. */
function waitingNote(waiting) {
  return waiting > 0
    ? h('span', { class: 'muted', title: 'dispatched ahead of a free slot' }, ` +${count(waiting)} waiting`)
    : null
}

/** GET /cluster's workers; `bossId` marks the boss's row when it is listed. */
export function renderWorkers(el, workers, bossId) {
  if (workers.length === 0) {
    put(el, h('p', { class: 'muted' }, 'no worker registered'))
    return
  }
  const rows = [...workers]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((w) => {
      const load = w.capacity > 0 ? Math.min(1, w.running / w.capacity) : 0
      const meter = h('meter', {
        min: 0,
        max: Math.max(1, w.capacity),
        value: w.running,
        title: `${w.running} running`,
      })
      return h(
        'tr',
        { 'data-worker-id': w.id, class: load >= 1 ? 'full' : undefined },
        h('td', {}, text(w.id), w.id === bossId ? h('span', { class: 'tag' }, 'boss') : null),
        h('td', {}, `${text(w.host)}:${text(w.pid)}`),
        h('td', { class: 'fns' }, (w.functions ?? []).join(', ') || '-'),
        h('td', { class: 'num' }, `${count(w.running)} / ${count(w.capacity)} `, meter, waitingNote(w.waiting)),
      )
    })
  put(
    el,
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', {}, 'id'),
          h('th', {}, 'host:pid'),
          h('th', {}, 'functions'),
          h('th', {}, 'running / capacity'),
        ),
      ),
      h('tbody', {}, rows),
    ),
  )
}

/**
 * The last GET /cluster/stats answer and the load history (charts.js); `unavailable` when this API
 * has no such route.
 */
export function renderStats(el, stats, history, { unavailable = false, now = Date.now() } = {}) {
  if (unavailable) {
    put(el, h('p', { class: 'muted' }, 'this API does not serve GET /cluster/stats (an older build)'))
    return
  }
  if (!stats) return
  const rate = history.rate(now)
  const stale = stats.at ? now - Date.parse(stats.at) : undefined
  const figure = (label, value, testid) =>
    h(
      'div',
      { class: 'figure' },
      h('span', { class: 'value', 'data-testid': testid }, value),
      h('span', { class: 'label' }, label),
    )
  put(
    el,
    h(
      'div',
      { class: 'figures' },
      figure('jobs/s', rate === null ? '-' : rate.toFixed(rate >= 100 ? 0 : 1), 'throughput'),
      figure('queued', count(stats.queued), 'queued'),
      figure('running', count(stats.running), 'running'),
      figure(
        `finished this term${stats.epoch !== null ? ` (epoch ${stats.epoch})` : ''}`,
        count(stats.finished),
        'finished',
      ),
    ),
    h(
      'div',
      { class: 'sparks' },
      h(
        'div',
        {},
        h('span', { class: 'small muted' }, 'throughput, jobs/s, last 2 min'),
        sparkline(history.samples, 'rate', { label: 'throughput', now, testid: 'spark-rate' }),
      ),
      h(
        'div',
        {},
        h('span', { class: 'small muted' }, 'queued, last 2 min'),
        sparkline(history.samples, 'queued', { label: 'queue depth', now, testid: 'spark-queued' }),
      ),
    ),
    stats.at === null
      ? h('p', { class: 'muted small' }, 'no load report from a boss yet')
      : stale > 5000
        ? h('p', { class: 'warn small' }, `the boss's last load report is ${duration(stale)} old`)
        : null,
  )
}

/** GET /jobs?limit=20 as a table; `onPick(id)` when a row is clicked; `selected` is highlighted. */
export function renderJobs(el, jobs, selected, onPick) {
  if (jobs.length === 0) {
    put(el, h('p', { class: 'muted' }, 'no job stored'))
    return
  }
  const rows = jobs.map((j) => {
    const tr = h(
      'tr',
      { 'data-job-id': j.id, 'data-state': j.state, class: `job${j.id === selected ? ' selected' : ''}`, tabindex: 0 },
      h('td', { class: 'mono' }, text(j.id)),
      h('td', {}, text(j.function)),
      h('td', {}, h('span', { class: `state ${j.state}` }, text(j.state))),
      h('td', { class: 'num' }, `${count(j.attempts)}/${count(j.maxAttempts)}`),
      h('td', {}, text(j.worker ?? '-')),
      h('td', {}, clock(j.createdAt)),
    )
    tr.addEventListener('click', () => onPick(j.id))
    tr.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault()
        onPick(j.id)
      }
    })
    return tr
  })
  const head = ['id', 'function', 'state', 'attempts', 'worker', 'created'].map((x) => h('th', {}, x))
  put(el, h('table', { class: 'jobs' }, h('thead', {}, h('tr', {}, head)), h('tbody', {}, rows)))
}

const JOB_FIELDS = ['id', 'function', 'state', 'attempts', 'maxAttempts', 'worker', 'priority', 'timeoutMs']
const JOB_TIMES = ['createdAt', 'runAt', 'startedAt', 'finishedAt']
const JOB_JSON = ['payload', 'result', 'error']

/** GET /jobs/:id: every field the job JSON has (unknown ones too), times with the waits between them. */
export function renderJobDetail(el, job, note) {
  if (!job) {
    put(el, h('p', { class: 'muted' }, note ?? 'no job selected'))
    return
  }
  el.dataset.jobId = job.id
  el.dataset.state = job.state
  const rows = []
  const row = (k, v) => rows.push(h('dt', {}, k), h('dd', { 'data-field': k }, v))
  for (const k of JOB_FIELDS) if (job[k] !== undefined) row(k, text(job[k]))
  for (const k of JOB_TIMES) if (job[k] !== undefined) row(k, `${clock(job[k])} (${text(job[k])})`)
  const t = (k) => Date.parse(job[k])
  if (job.startedAt) row('waited', duration(t('startedAt') - t('createdAt')))
  if (job.finishedAt && job.startedAt) row('ran', duration(t('finishedAt') - t('startedAt')))
  if (job.error) row('error', `${text(job.error.message)}${job.error.code ? ` (${job.error.code})` : ''}`)
  const known = new Set([...JOB_FIELDS, ...JOB_TIMES, ...JOB_JSON])
  for (const [k, v] of Object.entries(job))
    if (!known.has(k)) row(k, typeof v === 'object' ? shortJson(v, 300) : text(v))
  const blocks = JOB_JSON.filter((k) => job[k] !== undefined).map((k) =>
    h('details', { open: k !== 'payload' ? true : undefined }, h('summary', {}, k), h('pre', {}, shortJson(job[k]))),
  )
  put(
    el,
    h(
      'p',
      {},
      h('span', { class: `state ${job.state}` }, text(job.state)),
      ' ',
      isFinal(job.state) ? '' : h('span', { class: 'muted small' }, 'refreshing while it runs'),
    ),
    h('dl', { class: 'kv' }, rows),
    blocks,
    note ? h('p', { class: 'warn small' }, note) : null,
  )
}

/** One cluster event as a list item (newest first list: the caller prepends). */
export function eventItem(e) {
  const cls = e.type.startsWith('boss.')
    ? 'ev-boss'
    : e.type.startsWith('job.')
      ? 'ev-job'
      : e.type.startsWith('connection.')
        ? 'ev-conn'
        : 'ev-other'
  return h(
    'li',
    { class: cls, 'data-event-id': e.id, 'data-event-type': e.type, 'data-epoch': e.epoch },
    h('span', { class: 'mono time' }, clock(e.at)),
    h('span', { class: 'type' }, text(e.type)),
    h('span', { class: 'epoch' }, e.epoch === undefined ? '' : `epoch ${e.epoch}`),
    h('span', { class: 'what' }, eventWhat(e)),
    h('span', { class: 'src muted' }, `[${text(e.source?.id)}]`),
  )
}
