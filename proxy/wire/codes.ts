/**
 * Message type bytes of the PostgreSQL frontend/backend protocol, version 3.
 * Every typed message is: Byte1 code, Int32 length (counting itself but not the code), body.
 * The startup-phase messages (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) have no code byte.
 */
export const enum Frontend {
  Bind = 0x42, // B
  Close = 0x43, // C
  Describe = 0x44, // D
  Execute = 0x45, // E
  FunctionCall = 0x46, // F
  Flush = 0x48, // H
  Parse = 0x50, // P
  Query = 0x51, // Q
  Sync = 0x53, // S
  Terminate = 0x58, // X
  CopyFail = 0x66, // f
  CopyDone = 0x63, // c
  CopyData = 0x64, // d
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse all share 'p' */
  Password = 0x70, // p
}

export const enum Backend {
  ParseComplete = 0x31, // 1
  BindComplete = 0x32, // 2
  CloseComplete = 0x33, // 3
  NotificationResponse = 0x41, // A
  CommandComplete = 0x43, // C
  DataRow = 0x44, // D
  ErrorResponse = 0x45, // E
  CopyInResponse = 0x47, // G
  CopyOutResponse = 0x48, // H
  EmptyQueryResponse = 0x49, // I
  BackendKeyData = 0x4b, // K
  NoticeResponse = 0x4e, // N
  Authentication = 0x52, // R
  ParameterStatus = 0x53, // S
  RowDescription = 0x54, // T
  FunctionCallResponse = 0x56, // V
  CopyBothResponse = 0x57, // W
  ReadyForQuery = 0x5a, // Z
  NoData = 0x6e, // n
  PortalSuspended = 0x73, // s
  ParameterDescription = 0x74, // t
  NegotiateProtocolVersion = 0x76, // v
  CopyData = 0x64, // d
  CopyDone = 0x63, // c
}

/** Int32 codes that open a startup-phase packet in place of a protocol version. */
export const enum StartupCode {
  Protocol30 = 196608, // 3 << 16
  CancelRequest = 80877102,
  SSLRequest = 80877103,
  GSSENCRequest = 80877104,
}

/** The Authentication ('R') sub-codes the proxy needs to look at or send. */
export const enum AuthCode {
  Ok = 0,
  CleartextPassword = 3,
  MD5Password = 5,
  SASL = 10,
  SASLContinue = 11,
  SASLFinal = 12,
}

export const FRONTEND_CODES: ReadonlySet<number> = new Set([
  Frontend.Bind, Frontend.Close, Frontend.Describe, Frontend.Execute, Frontend.FunctionCall,
  Frontend.Flush, Frontend.Parse, Frontend.Query, Frontend.Sync, Frontend.Terminate,
  Frontend.CopyFail, Frontend.CopyDone, Frontend.CopyData, Frontend.Password,
]);
