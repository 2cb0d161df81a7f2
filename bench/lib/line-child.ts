/**
 * A child node process that reports events as JSON lines on stdout (bench/candidate.ts). Every
 * line is kept; `next()` waits for a matching one. Each child has a watchdog that SIGKILLs it if the
 * benchmark process disappears, and every child still alive is SIGKILLed when the benchmark exits.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { REPO_ROOT } from './report.js'

/** One JSON line printed by a child. */
export interface ChildEvent {
  ev: string
  t: number
  pid: number
  [key: string]: unknown
}

const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const c of live) {
    try {
      if (c.pid) process.kill(c.pid, 'SIGKILL')
    } catch {
      /* gone */
    }
  }
})

export class LineChild {
  readonly events: ChildEvent[] = []
  readonly exited: Promise<void>
  private readonly waiters = new Set<{ match: (e: ChildEvent) => boolean; resolve: (e: ChildEvent) => void }>()
  private done = false

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    live.add(child)
    this.exited = new Promise((res) =>
      child.once('exit', () => {
        live.delete(child)
        this.done = true
        res()
      }),
    )
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith('{')) return
      let e: ChildEvent
      try {
        e = JSON.parse(line) as ChildEvent
      } catch {
        return
      }
      this.events.push(e)
      for (const w of this.waiters) {
        if (w.match(e)) {
          this.waiters.delete(w)
          w.resolve(e)
        }
      }
    })
  }

  get pid(): number {
    return this.child.pid!
  }

  get running(): boolean {
    return !this.done
  }

  /** The first event (already seen or future) matching `match`; rejects after timeoutMs. */
  next(match: (e: ChildEvent) => boolean, timeoutMs = 30_000): Promise<ChildEvent> {
    const seen = this.events.find(match)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const w = {
        match,
        resolve: (e: ChildEvent) => {
          clearTimeout(timer)
          resolve(e)
        },
      }
      const timer = setTimeout(() => {
        this.waiters.delete(w)
        reject(new Error(`${this.name}: no matching event within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.add(w)
    })
  }

  /** Send a signal (no-op when gone). */
  signal(sig: NodeJS.Signals): void {
    if (!this.done) this.child.kill(sig)
  }

  /** SIGKILL and wait for the exit. */
  async kill(): Promise<void> {
    this.signal('SIGKILL')
    await this.exited
  }
}

/** Run `node <REPO_ROOT>/<script>` with exactly `env` (plus PATH/HOME), stdout piped, stderr to `stderr`. */
export function spawnLineChild(name: string, script: string, env: Record<string, string>): LineChild {
  const child = spawn(process.execPath, [join(REPO_ROOT, script)], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const watchdog = spawn(
    'sh',
    [
      '-c',
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${child.pid} 2>/dev/null; do sleep 0.5; done; ` +
        `kill -9 ${child.pid} 2>/dev/null`,
    ],
    {
      stdio: 'ignore',
      detached: true,
    },
  )
  watchdog.unref()
  return new LineChild(name, child)
}
