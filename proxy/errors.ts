/**
 * An error meant for the client, carried to it as an ErrorResponse.
 * Codes are SQLSTATEs from the PostgreSQL manual, Appendix A.
 */
export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'LOG' | 'INFO' | 'DEBUG';

export interface ErrorFields {
  detail?: string;
  hint?: string;
  /** Position (1-based) in the statement text, when the error is about part of it. */
  position?: number;
}

export class PgError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly severity: Severity = 'ERROR',
    readonly fields: ErrorFields = {},
  ) {
    super(message);
    this.name = 'PgError';
  }

  /** FATAL errors end the connection after they are sent. */
  get fatal(): boolean {
    return this.severity === 'FATAL' || this.severity === 'PANIC';
  }
}

export const SqlState = {
  ConnectionException: '08000',
  SqlclientUnableToEstablishSqlconnection: '08001',
  ConnectionFailure: '08006',
  ProtocolViolation: '08P01',
  FeatureNotSupported: '0A000',
  InvalidAuthorizationSpecification: '28000',
  InvalidPassword: '28P01',
  InvalidCatalogName: '3D000',
  QueryCanceled: '57014',
  AdminShutdown: '57P01',
  CannotConnectNow: '57P03',
  TooManyConnections: '53300',
  InternalError: 'XX000',
  ReadOnlySqlTransaction: '25006',
  InsufficientPrivilege: '42501',
  ExternalRoutineException: '38000',
  ObjectNotInPrerequisiteState: '55000',
} as const;

/** Wrap anything thrown by our own code into an error safe to show a client. */
export function toPgError(err: unknown, context: string): PgError {
  if (err instanceof PgError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new PgError(SqlState.InternalError, `${context}: ${message}`);
}
