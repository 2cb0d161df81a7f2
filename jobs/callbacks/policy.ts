/**
 * Who completion callbacks may reach, and how a delivery is signed (README "Completion callbacks").
 * The allow list (BOSUN_CALLBACK_ALLOW) is checked twice: by the API at submit (a refused URL is a
 * 400 and nothing is stored) and by the deliverer before every POST (its own configuration, so a
 * host removed from the list later is no longer called). Only http: and https: URLs without
 * credentials; an entry is a host name or IP (any port), `host:port` (that port only), or `*`.
 */
import { createHmac } from 'node:crypto'

/** Longest callbackUrl accepted (the API's schema says the same). */
export const CALLBACK_URL_MAX_LENGTH = 2048

/** One entry of BOSUN_CALLBACK_ALLOW as written: `*`, a host, `host:port`, `[v6]` or `[v6]:port`. */
export const ALLOW_ENTRY_PATTERN = /^(\*|[A-Za-z0-9._-]{1,253}(:\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:\d{1,5})?)$/

export interface AllowList {
  /** `*`: every host. */
  readonly any: boolean
  /** host (lower case; IPv6 in brackets) → allowed ports (undefined: any port). */
  readonly hosts: ReadonlyMap<string, ReadonlySet<number> | undefined>
}

/** The parsed list (entries already checked against ALLOW_ENTRY_PATTERN by the config). Empty: nothing allowed. */
export function parseAllowList(entries: readonly string[]): AllowList {
  const hosts = new Map<string, Set<number> | undefined>()
  let any = false
  for (const raw of entries) {
    const e = raw.trim().toLowerCase()
    if (e === '') continue
    if (e === '*') {
      any = true
      continue
    }
    const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(e)
    if (!m) continue
    const host = m[1]!
    if (m[2] === undefined) {
      hosts.set(host, undefined) // any port wins over a list of ports
      continue
    }
    if (hosts.has(host) && hosts.get(host) === undefined) continue
    const ports = hosts.get(host) ?? new Set<number>()
    ports.add(Number(m[2]))
    hosts.set(host, ports)
  }
  return Object.freeze({ any, hosts })
}

/** True when the list allows nothing (unset or empty BOSUN_CALLBACK_ALLOW). */
export function allowsNothing(a: AllowList): boolean {
  return !a.any && a.hosts.size === 0
}

/** Why `url` may not be called back, or null when it may. The message names what is wrong, for a 400. */
export function callbackUrlProblem(url: string, allow: AllowList): string | null {
  if (url.length > CALLBACK_URL_MAX_LENGTH) return `is longer than ${CALLBACK_URL_MAX_LENGTH} characters`
  let u: URL
  try {
    u = new URL(url)
  } catch {
    return 'is not an absolute URL'
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return `must be an http: or https: URL (not ${u.protocol})`
  if (u.username !== '' || u.password !== '') return 'must not carry credentials (user:password@)'
  if (u.hostname === '') return 'has no host'
  if (allowsNothing(allow)) return 'cannot be used: callbacks are off (BOSUN_CALLBACK_ALLOW is empty)'
  if (allow.any) return null
  const host = u.hostname.toLowerCase()
  const port = u.port === '' ? (u.protocol === 'https:' ? 443 : 80) : Number(u.port)
  if (!allow.hosts.has(host)) return `host ${JSON.stringify(host)} is not in BOSUN_CALLBACK_ALLOW`
  const ports = allow.hosts.get(host)
  if (ports !== undefined && !ports.has(port))
    return `port ${port} of host ${JSON.stringify(host)} is not in BOSUN_CALLBACK_ALLOW`
  return null
}

/** `X-Bosun-Signature`: `sha256=` and the hex HMAC-SHA256 of the exact body bytes under the secret. */
export function signature(secret: string, body: Uint8Array | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
}

/** The delivery id receivers dedupe on: stable for one run of a job across every attempt. */
export function deliveryId(jobId: string, run: number): string {
  return `${jobId}.${run}`
}
