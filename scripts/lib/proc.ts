/**
 * Process-group helpers. Every process the local cluster starts leads its own process group
 * (`spawn(..., { detached: true })`), so signalling `-pgid` reaches its grandchildren too.
 *
 * "Alive" ignores zombies: on machines whose init does not reap orphans, a dead grandchild can
 * linger as a zombie forever, and `kill(-pgid, 0)` would still succeed for it.
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Send `signal` to every process of group `pgid`; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch {
    return false
  }
}

/** State letter and process group of `pid` from /proc (Linux), or undefined when unknown. */
function procStat(pid: string): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { state: fields[0] ?? '', pgrp: Number(fields[2]) }
  } catch {
    return undefined
  }
}

function isDead(state: string): boolean {
  return state === 'Z' || state === 'X' || state === 'x'
}

/** Does process `pid` exist and is it not a zombie? */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
  const stat = procStat(String(pid))
  return stat === undefined ? true : !isDead(stat.state)
}

/** Does group `pgid` have at least one live (non-zombie) member? */
export function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return true // no /proc: trust kill(-pgid, 0)
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const stat = procStat(entry)
    if (stat !== undefined && stat.pgrp === pgid && !isDead(stat.state)) return true
  }
  return false
}

/** Poll `check` every `intervalMs` until it is true (→ true) or `timeoutMs` pass (→ false). */
export async function pollUntil(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
