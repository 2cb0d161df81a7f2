/** NATS side of the runtime: connection, transport, subject names, wire format. */
export {
  connectNats,
  natsConnectionOptions,
  RECONNECT_TIME_WAIT_MS,
  PING_INTERVAL_MS,
  MAX_PINGS_OUT,
  type ConnectNatsOptions,
} from './connect.js'
export {
  NatsTransport,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type NatsTransportOptions,
  type EnvelopeListener,
} from './nats-transport.js'
export {
  subjectFor,
  procSubject,
  finishedJobsSubject,
  finishingJobsSubject,
  finalAcksPrefix,
  finalAcksSubjects,
  bossStatsSubject,
  isSubjectToken,
  SUBJECT_ROOT,
} from './subjects.js'
export { remoteCode, REPLY_TYPE, type RemoteErrorInfo, type ReplyEnvelope } from './envelope.js'
