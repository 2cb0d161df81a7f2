/**
 * Load-time patch of node-zookeeper-client 1.1.3 (README "Design notes", client hazard 5): error codes
 * newer than the 3.4 protocol (e.g. -118 SESSION_MOVED, -125 QUOTA_EXCEEDED, -127 THROTTLED_OP) make
 * `Exception.create` throw "Unknown code" inside the socket's data handler, which crashes the process. After this
 * module is imported, an unknown code becomes an ordinary Exception (same prototype, `getCode()`
 * works) that reaches the request's callback like any other error. As a second guard, any throw
 * inside the data handler drops the connection (the client reconnects) instead of crashing.
 * Third: the client keeps a partial frame (`pendingBuffer`) across a reconnect, so the next
 * connect response is parsed behind stale bytes (seen as a false "session expired"); it is cleared
 * whenever the socket closes.
 */
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

/** The shape of lib/Exception.js as far as the patch needs it. */
interface ExceptionModule {
  (this: unknown, ...args: unknown[]): void
  create: (code: number, path?: string) => ZkClientException
  prototype: object
  __bosunPatched?: boolean
}

/** What node-zookeeper-client hands to callbacks on failure. */
export interface ZkClientException extends Error {
  code: number
  path?: string | undefined
  getCode(): number
}

type ManagerThis = { socket?: { destroy(): void }; pendingBuffer: Buffer | null }

interface ConnectionManagerClass {
  prototype: {
    onSocketData: (this: ManagerThis, buf: Buffer) => void
    onSocketClosed: (this: ManagerThis, hadError: boolean) => void
    __bosunPatched?: boolean
  }
}

/** ZooKeeper 3.5–3.9 codes the 3.4 client does not know, with their server-side names. */
export const NEWER_ZK_CODES: Readonly<Record<number, string>> = Object.freeze({
  [-12]: 'UNKNOWN_SESSION',
  [-13]: 'NEW_CONFIG_NO_QUORUM',
  [-14]: 'RECONFIG_IN_PROGRESS',
  [-118]: 'SESSION_MOVED',
  [-119]: 'NOT_READONLY',
  [-120]: 'EPHEMERAL_ON_LOCAL_SESSION',
  [-121]: 'NO_WATCHER',
  [-122]: 'REQUEST_TIMEOUT',
  [-123]: 'RECONFIG_DISABLED',
  [-124]: 'SESSION_CLOSED_REQUIRE_SASL_AUTH',
  [-125]: 'QUOTA_EXCEEDED',
  [-127]: 'THROTTLED_OP',
})

const Exception = require('node-zookeeper-client/lib/Exception.js') as ExceptionModule
const ConnectionManager = require('node-zookeeper-client/lib/ConnectionManager.js') as ConnectionManagerClass

/** Codes the client itself defines (exported as numeric properties of the module). */
const knownCodes = new Set<number>(
  Object.values(Exception as unknown as Record<string, unknown>).filter((v): v is number => typeof v === 'number'),
)

let guardListener: ((err: unknown) => void) | undefined

/** Called with whatever the data-handler guard swallowed (the session logs it). */
export function onClientGuardError(listener: ((err: unknown) => void) | undefined): void {
  guardListener = listener
}

/** Build an Exception for a code the client does not know (no assertion, no throw). */
function unknownException(
  code: unknown,
  path: string | undefined,
  originalCreate: ExceptionModule['create'],
): ZkClientException {
  const numeric = typeof code === 'number' && Number.isFinite(code) ? code : -1
  if (knownCodes.has(numeric)) return originalCreate(numeric, path)
  const name = NEWER_ZK_CODES[numeric] ?? 'UNKNOWN_ERROR'
  const err = Object.create(Exception.prototype) as ZkClientException
  Error.captureStackTrace(err, Exception.create)
  err.code = numeric
  err.name = name
  err.path = path
  err.message = `Exception: ${name}[${numeric}]${path ? `@${path}` : ''}`
  return err
}

function patch(): void {
  if (!Exception.__bosunPatched) {
    const originalCreate = Exception.create
    Exception.create = function create(code: number, path?: string): ZkClientException {
      if (typeof code === 'number' && knownCodes.has(code)) return originalCreate(code, path)
      return unknownException(code, path, originalCreate)
    }
    Exception.__bosunPatched = true
  }
  const proto = ConnectionManager.prototype
  if (!proto.__bosunPatched) {
    const originalOnData = proto.onSocketData
    proto.onSocketData = function guardedOnSocketData(buf: Buffer): void {
      try {
        originalOnData.call(this, buf)
      } catch (err) {
        this.pendingBuffer = null
        try {
          this.socket?.destroy()
        } catch {
          /* already gone */
        }
        guardListener?.(err)
      }
    }
    const originalOnClosed = proto.onSocketClosed
    proto.onSocketClosed = function clearingOnSocketClosed(hadError: boolean): void {
      this.pendingBuffer = null
      originalOnClosed.call(this, hadError)
    }
    proto.__bosunPatched = true
  }
}

patch()

/** The patched `Exception.create` (tests feed it unknown codes). */
export function createClientException(code: number, path?: string): ZkClientException {
  return Exception.create(code, path)
}

/** True when the patch is in place (it is applied when this module loads). */
export function isClientPatched(): boolean {
  return Exception.__bosunPatched === true && ConnectionManager.prototype.__bosunPatched === true
}
