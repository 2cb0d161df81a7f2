/**
 * Last line of defence against orphans: a tiny detached shell that waits for the launcher to
 * disappear (even by SIGKILL, where no handler runs) and then SIGKILLs every process group listed
 * in the groups file. The launcher keeps that file current and empties it on a clean shutdown.
 */
import { spawn } from 'node:child_process'
import { renameSync, writeFileSync } from 'node:fs'
import { signalGroup } from './proc.js'

/** A running watchdog. */
export interface Watchdog {
  readonly pid: number | undefined
  /** Replace the list of process groups to kill if the launcher dies. */
  update(pgids: readonly number[]): void
  /** Stop the watchdog (clean shutdown: nothing left to kill). Idempotent. */
  stop(): void
}

/** Atomically write the groups file (one pgid per line). */
function writeGroups(file: string, pgids: readonly number[]): void {
  writeFileSync(`${file}.tmp`, pgids.map((p) => `${p}\n`).join(''))
  renameSync(`${file}.tmp`, file)
}

/** Start a watchdog for `parentPid` that reads `groupsFile` when the parent is gone. */
export function startWatchdog(parentPid: number, groupsFile: string): Watchdog {
  writeGroups(groupsFile, [])
  // The parent counts as gone when it no longer exists or is a zombie nobody reaped.
  const script = [
    'P=$1; F=$2',
    'while kill -0 "$P" 2>/dev/null && [ "$(sed "s/.*) //" /proc/$P/stat 2>/dev/null | cut -c1)" != Z ]; do',
    '  sleep 1',
    'done',
    'for g in $(cat "$F" 2>/dev/null); do kill -CONT -"$g" 2>/dev/null; kill -KILL -"$g" 2>/dev/null; done',
  ].join('\n')
  const child = spawn('sh', ['-c', script, 'bosun-watchdog', String(parentPid), groupsFile], {
    detached: true,
    stdio: 'ignore',
  })
  child.unref()
  let stopped = false
  return {
    pid: child.pid,
    update(pgids) {
      if (!stopped) writeGroups(groupsFile, pgids)
    },
    stop() {
      if (stopped) return
      stopped = true
      writeGroups(groupsFile, [])
      if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL')
    },
  }
}
