/**
 * CPU time of other processes from /proc/<pid>/stat (user + system), so a benchmark can say which
 * process was busy during a phase (the boss, the API, nats-server, ZooKeeper, the bench itself).
 */
import { readFileSync } from 'node:fs'

const TICKS_PER_SECOND = 100 // USER_HZ on Linux

/** CPU seconds (user + system) used so far by `pid`; NaN when the process is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const utime = Number(fields[11])
    const stime = Number(fields[12])
    return (utime + stime) / TICKS_PER_SECOND
  } catch {
    return Number.NaN
  }
}

/** This process's CPU seconds. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** A labelled set of processes whose CPU use over a phase is measured. */
export class CpuMeter {
  private start = new Map<string, number>()
  private t0 = 0

  constructor(private readonly pids: () => Record<string, number | undefined>) {}

  begin(): void {
    this.t0 = performance.now()
    this.start = new Map(Object.entries(this.pids()).map(([k, pid]) => [k, cpuSeconds(pid)]))
    this.start.set('bench', selfCpuSeconds())
  }

  /** Per label: CPU seconds used since begin() and the share of one core (1.0 = one core busy). */
  end(): Record<string, { cpuS: number; cores: number }> {
    const wall = (performance.now() - this.t0) / 1000
    const now = Object.entries(this.pids()).map(([k, pid]) => [k, cpuSeconds(pid)] as const)
    const out: Record<string, { cpuS: number; cores: number }> = {}
    for (const [k, v] of [...now, ['bench', selfCpuSeconds()] as const]) {
      const before = this.start.get(k)
      if (before === undefined || !Number.isFinite(before) || !Number.isFinite(v)) continue
      const cpuS = v - before
      out[k] = { cpuS: Math.round(cpuS * 100) / 100, cores: Math.round((cpuS / wall) * 100) / 100 }
    }
    return out
  }
}
