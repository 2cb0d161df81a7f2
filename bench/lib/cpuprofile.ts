/**
 * Summarise V8 `.cpuprofile` files (written by `node --cpu-prof` or lib/cpu-prof-preload.ts): self time per
 * function and per code origin (a bosun source folder, a node_modules package, node internals, GC, idle).
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  hitCount?: number
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples?: number[]
  timeDeltas?: number[]
}

export interface ProfileSummary {
  file: string
  pid: number
  thread: number
  /** Sampled wall time of the profile (ms). */
  totalMs: number
  /** Busy (non-idle) time (ms). */
  busyMs: number
  topFunctions: { fn: string; selfMs: number; pct: number }[]
  byOrigin: { origin: string; selfMs: number; pct: number }[]
}

/** `CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile` → pid and thread. */
export function profileIds(file: string): { pid: number; thread: number } {
  const parts = file.split('.')
  return { pid: Number(parts[3]), thread: Number(parts[4]) }
}

function origin(url: string, fn: string): string {
  if (fn === '(idle)' || fn === '(program)' || fn === '(garbage collector)') return fn
  if (url === '') return '(native)'
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) {
    const rest = url.slice(nm + 14).split('/')
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!
  }
  const m = /\/dist\/(.+)\/[^/]+$/.exec(url)
  if (m) return `bosun:${m[1]}`
  return url.split('/').slice(-2).join('/')
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('/node_modules/')
  if (nm !== -1) return url.slice(nm + 14)
  const d = url.indexOf('/dist/')
  if (d !== -1) return url.slice(d + 6)
  return url.replace(/^file:\/\//, '')
}

/** Self time per function and origin in one profile. */
export function summarizeProfile(path: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as Profile
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const self = new Map<number, number>()
  if (p.samples && p.timeDeltas) {
    for (let i = 0; i < p.samples.length; i++) {
      const id = p.samples[i]!
      self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0))
    }
  } else {
    const per =
      (p.endTime - p.startTime) /
      Math.max(
        1,
        p.nodes.reduce((n, x) => n + (x.hitCount ?? 0), 0),
      )
    for (const n of p.nodes) self.set(n.id, (n.hitCount ?? 0) * per)
  }
  const fns = new Map<string, number>()
  const origins = new Map<string, number>()
  let total = 0
  let idle = 0
  for (const [id, us] of self) {
    const n = byId.get(id)
    if (!n) continue
    const { functionName, url, lineNumber } = n.callFrame
    const name = functionName || '(anonymous)'
    total += us
    if (name === '(idle)') idle += us
    const key = url ? `${name} ${shortUrl(url)}:${lineNumber + 1}` : name
    fns.set(key, (fns.get(key) ?? 0) + us)
    const o = origin(url, name)
    origins.set(o, (origins.get(o) ?? 0) + us)
  }
  const busy = total - idle
  const rank = (m: Map<string, number>, skipIdle: boolean) =>
    [...m.entries()].filter(([k]) => !skipIdle || !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1])
  const { pid, thread } = profileIds(path.split('/').pop()!)
  return {
    file: path,
    pid,
    thread,
    totalMs: Math.round(total / 1000),
    busyMs: Math.round(busy / 1000),
    topFunctions: rank(fns, true)
      .slice(0, top)
      .map(([fn, us]) => ({
        fn,
        selfMs: Math.round(us / 1000),
        pct: Math.round((us / Math.max(1, busy)) * 1000) / 10,
      })),
    byOrigin: rank(origins, true)
      .slice(0, top)
      .map(([o, us]) => ({
        origin: o,
        selfMs: Math.round(us / 1000),
        pct: Math.round((us / Math.max(1, busy)) * 1000) / 10,
      })),
  }
}

/** Every main-thread profile in `dir` for the given pids. */
export function summarizeDir(dir: string, pids: Set<number>, top = 15): ProfileSummary[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .filter((f) => pids.has(profileIds(f).pid))
    .map((f) => summarizeProfile(join(dir, f), top))
}

/** A readable block for one summary. */
export function formatProfile(label: string, s: ProfileSummary): string {
  const lines = [`-- ${label} (pid ${s.pid}, thread ${s.thread}): busy ${s.busyMs} ms of ${s.totalMs} ms sampled`]
  lines.push(
    '   by origin: ' +
      s.byOrigin
        .slice(0, 8)
        .map((o) => `${o.origin} ${o.pct}%`)
        .join(', '),
  )
  for (const f of s.topFunctions) lines.push(`   ${String(f.pct).padStart(5)}%  ${f.fn}`)
  return lines.join('\n') + '\n'
}
