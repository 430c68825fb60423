/**
 * The typed services plugins meet through. A plugin never imports another plugin: what it needs
 * from one is declared here, offered by that plugin's factory and wired by the program's entry
 * (proxy/compose.ts). What the proxy itself offers plugins (its state store, the upstream's
 * roles) is declared here too, and implemented in proxy/.
 */
import type { SessionInfo } from './hooks.js';
import type { SqlRunner } from './registry/migrate.js';
import type { SqlAnalyser } from './sql/analyser.js';

/** A connection to the database that holds the proxy's state. */
export interface StoreConnection extends SqlRunner {
  listen(channel: string, cb: (payload: string) => void): Promise<void>;
  /** Called once if the connection breaks. */
  onLost(cb: () => void): void;
  close(): Promise<void>;
}

/** Hears when the state store is attached (at start, and again after each reconnection) and lost. */
export interface StoreWatcher {
  attached(store: StoreConnection): Promise<void>;
  lost(): void;
}

/** The proxy's connection to the database that holds its state (the registry, the DAG). */
export interface StateService {
  /** The store in use; null while it is not connected. */
  current(): StoreConnection | null;
  /** Why the store cannot be used now, if known. */
  problem(): string | null;
  /** Registers a watcher; only before attached() is first called. */
  watch(watcher: StoreWatcher): void;
  /** Settles once the store was first attached and every watcher has seen it. */
  attached(): Promise<StoreConnection>;
  /** A new connection to another database (a separate provenance store), its schema brought up to date. */
  open(url: string): Promise<StoreConnection>;
}

/** One end of a TCP connection. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Connections a plugin opens to this proxy on someone's behalf (the HTTP API's callers). */
export interface OwnConnectionsService {
  /**
   * The session of the connection between `client` and `server` (this process's socket's local
   * and remote ends) is to carry `caller`'s address and port. Call it once the socket is
   * connected, before the startup packet is sent; the returned function forgets it.
   */
  vouch(client: Endpoint, server: Endpoint, caller: Endpoint): () => void;
}

/** What the proxy offers every plugin. */
export interface ProxyServices {
  readonly log: (msg: string) => void;
  /** PostgreSQL's parser, loaded. */
  readonly sql: SqlAnalyser;
  readonly state: StateService;
  /** The PostgreSQL server clients reach; null for the embedded database. */
  readonly upstream: { readonly host: string; readonly port: number } | null;
  /** The embedded database when it holds the state; `busy` while a session holds its single backend. */
  readonly embedded: { readonly store: SqlRunner; busy(): boolean } | null;
  /** The roles a user belongs to; empty when that cannot be known now. */
  roles(user: string): Promise<readonly string[]>;
  readonly ownConnections: OwnConnectionsService;
}

/** A transform version as an execution names it. */
export interface ExecutedTransform {
  readonly name: string;
  readonly version: number;
  readonly fn: { readonly hash: string };
  readonly params: unknown;
}

/** A hash of the portion of a result an execution processed (see plugins/shared/canonical-hash.ts). */
export interface PortionDigest {
  hex(): string;
}

/** What one transform version did over one result (all its batches): a DAG node's substance. */
export interface Execution {
  readonly transform: ExecutedTransform;
  readonly table: { readonly oid: number; readonly name: string };
  /** The portion's column names in table order; null for a row transform (it saw every field of the table). */
  readonly columns: readonly string[] | null;
  readonly input: PortionDigest;
  readonly output: PortionDigest;
  readonly rowsIn: number;
  readonly rowsOut: number;
  /** Epoch milliseconds of its first batch. */
  readonly startedAt: number;
  readonly durationMs: number;
  /** The execution before it in its table's chain (null: it read the table's rows). */
  readonly parent: Execution | null;
  /** Last of its table's chain: its output is what the client got. */
  readonly chainEnd: boolean;
}

/** One result's executions, with the context the transforms ran in. */
export interface ResultExecutions {
  /** `read`: served to a client; `replay`: recomputed for a read of the past. */
  readonly kind: 'read' | 'replay';
  readonly executions: readonly Execution[];
  readonly outcome: 'complete' | 'error';
  readonly error: string | null;
  /** The roles of the session's user the transforms saw. */
  readonly roles: readonly string[];
  /** A replay's moment (AsOfMoment.at) and the user whose reads it repeats; absent for a read. */
  readonly asOf?: { readonly at: string; readonly user: string };
}

/** A replayed execution whose output differs from that of the recorded read it replays. */
export interface ReplayMismatch {
  readonly transform: ExecutedTransform;
  /** The replayed execution's id, and the recorded one's. */
  readonly replay: string;
  readonly recorded: string;
  readonly output: string;
  readonly recordedOutput: string;
}

/** Offered by provenance: records executions. */
export interface ProvenanceService {
  /** Whether executions are to be reported at all; asked at each result. */
  readonly recording: boolean;
  /**
   * Records one result's executions; a returned promise holds the client's CommandComplete back
   * until it settles. For a replay it settles with the executions that did not reproduce the
   * recorded read they replay, once each was checked.
   */
  record(s: SessionInfo, r: ResultExecutions): void | Promise<void | readonly ReplayMismatch[]>;
  /** Records not yet in the database: in memory, and in the spool file. */
  backlog?(): { readonly queued: number; readonly spooled: number };
  /** The database the records are written to, for reading them back; null while it is not connected. */
  records?(): SqlRunner | null;
}

/** Offered by transforms. */
export interface TransformsService {
  /** Whether any transform is registered (without one there is nothing to record). */
  active(): boolean;
  /** How the cache of replayed results did since the start. */
  replayCache(): { readonly hits: number; readonly misses: number; readonly bytes: number };
}

/** The moment an as-of session reads, and the context its replays run in. */
export interface AsOfMoment {
  /** The moment as PostgreSQL prints a timestamptz in UTC, to the microsecond ('2026-10-27 10:00:00.123456+00'). */
  readonly at: string;
  /** The same moment in epoch microseconds, for comparisons. */
  readonly atMicros: bigint;
  /** Whose context the replay runs in: `provenance.as_user`, or the session's own user. */
  readonly user: string;
  /** That user's roles at the moment: as recorded in their latest execution by then, or their current membership. */
  readonly roles: readonly string[];
}

/** Offered by time travel. */
export interface TimeTravelService {
  /** The moment the session reads as of; null while it reads the present. */
  asOf(session: SessionInfo): AsOfMoment | null;
  /**
   * A column of a relation an as-of statement reads in place of a tracked table (that table's
   * history): the tracked table's oid and the column's number there. Null for any other relation,
   * or a history column that is not one of the table's (validity, a dropped column).
   */
  sourceOf(relationOid: number, attnum: number): { readonly oid: number; readonly attnum: number } | null;
}

/** Every service, as the entry wires them; a plugin's own service is set once its factory ran. */
export interface Services extends ProxyServices {
  provenance?: ProvenanceService;
  transforms?: TransformsService;
  timetravel?: TimeTravelService;
}
