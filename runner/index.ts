/**
 * bosun's runtime: the public API of runner/. The processes (api/, worker/) and the benches import
 * the runtime from here, never a module behind it — except runner/'s dependency-light leaves, which any
 * code may import directly: errors, logger, retry, events/model, events/leadership, and v8-tuning /
 * v8-flags (set before the rest loads). Code that must run without the runtime (ZooKeeper's client,
 * prom-client) imports only those leaves: the job threads' executor, the function kit users import,
 * the CLI, the clients and the launcher. The job store (jobs/), which the native client loads into
 * users' services, also takes the NATS side directly (transport/reply-inbox, transport/subjects,
 * jetstream-stream, config). eslint.config.js enforces this.
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
export { FORCE_EXIT_MS, runMain } from './main.js'
export {
  bossStatsSubject,
  finalAcksSubjects,
  finishedJobsSubject,
  finishingJobsSubject,
  procSubject,
  NatsTransport,
} from './transport/index.js'
export { ClusterEventPublisher } from './events/publisher.js'
export { watchConnections } from './events/connection-events.js'
export { nodeConnections } from './metrics/process-metrics.js'
export { ApiMetrics } from './metrics/api-metrics.js'
export type { LeadershipMetrics } from './metrics/leadership-metrics.js'
export { WorkerMetrics } from './metrics/worker-metrics.js'
export type { AgentMetrics, AttemptState, BossMetrics, RedispatchReason } from './metrics/worker-metrics.js'
export { MetricsServer } from './metrics/metrics-server.js'
