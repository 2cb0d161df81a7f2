/**
 * bosun's runtime: the public API. Nothing outside runner/ imports anything else from here.
 */
export { BosunError, errors, isBosunError, describeError } from './errors.js'
export type { BosunErrorOptions, ErrorCode } from './errors.js'
export { createLogger, silentLogger, LOG_LEVELS } from './logger.js'
export type { Logger } from './logger.js'
export { parseEnv, describeEnv } from './env.js'
export type { EnvSpec, ParsedEnv } from './env.js'
export {
  loadRuntimeConfig,
  runtimeConfigFrom,
  runtimeEnv,
  splitZkConnect,
  CLUSTER_PATTERN,
  DEFAULT_CLUSTER,
  DEFAULT_NATS_URL,
  DEFAULT_ZK_CONNECT,
  DEFAULT_ZK_SESSION_TIMEOUT_MS,
} from './config.js'
export type { RuntimeConfig, ZkConfig, NatsConfig } from './config.js'
export type {
  BosunNode,
  CandidateCallbacks,
  ConnectionState,
  DeposedReason,
  Election,
  Envelope,
  LeaderInfo,
  Leadership,
  MessageHandler,
  Meta,
  PeerEntry,
  Registry,
  RequestOptions,
  ServiceEntry,
  Transport,
  TransportStatus,
} from './contracts.js'
export { startNode, generateNodeId, BosunNodeImpl } from './node.js'
export type { StartNodeOptions } from './node.js'
