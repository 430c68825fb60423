/**
 * The typed services plugins meet through. A plugin never imports another plugin: what it needs
 * from one is declared here, offered by that plugin's factory and wired by the program's entry
 * (proxy/compose.ts). What the proxy itself offers plugins (its state store, the upstream's
 * roles) is declared here too, and implemented in proxy/.
 */
import type { SessionInfo } from './hooks.js';
import type { PgError } from '../proxy/errors.js';
import type { FieldDescription } from '../proxy/wire/backend-messages.js';
import type { SqlRunner } from './registry/migrate.js';
import type { SqlAnalyser } from './sql/analyser.js';

/** SQL in a transaction, and `COPY … FROM STDIN` fed `data`. */
export interface CopyRunner extends SqlRunner {
  copyFrom(sql: string, data: string): Promise<void>;
}

/** A connection to the database that holds the proxy's state. */
export interface StoreConnection extends SqlRunner {
  listen(channel: string, cb: (payload: string) => void): Promise<void>;
  /** Called once if the connection breaks. */
  onLost(cb: () => void): void;
  close(): Promise<void>;
  /**
   * Runs `body` in a transaction, with no other statement of this connection in between, and
   * commits (rolls back when it throws). Where the connection can COPY (a remote PostgreSQL).
   */
  transaction?<T>(body: (tx: CopyRunner) => Promise<T>): Promise<T>;
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
  /** `read`: served to a client; `replay`: recomputed for a read of the past; `materialized`: served from a materialisation. */
  readonly kind: 'read' | 'replay' | 'materialized';
  readonly executions: readonly Execution[];
  readonly outcome: 'complete' | 'error';
  readonly error: string | null;
  /** The roles of the session's user the transforms saw. */
  readonly roles: readonly string[];
  /** A replay's moment (AsOfMoment.at) and the user whose reads it repeats; absent for a read. */
  readonly asOf?: { readonly at: string; readonly user: string };
  /** The materialisation a read of kind `materialized` was served from. */
  readonly materialization?: number;
  /** A replay's tables (names) whose every batch came from the replay cache. */
  readonly cached?: readonly string[];
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

/** A transform of a table's chain at a moment, as a materialisation names it. */
export interface ChainLink {
  readonly name: string;
  readonly version: number;
  readonly function_hash: string;
  readonly params: unknown;
  /** The attnums of a column transform's columns; null for a row transform. */
  readonly columns: readonly number[] | null;
}

/** What a chain's batches read besides their rows, as the sandbox noted it. */
export interface ChainReads {
  readonly ctx: ReadonlySet<string>;
  readonly clock: boolean;
  readonly random: boolean;
}

/** One run of a table's chain of a moment over rows given batch by batch (see transforms/table-run.ts). */
export interface TableRun {
  /** Transforms one batch of rows (each a value per field, text format); returns the rows served. */
  batch(rows: readonly (readonly (Buffer | null)[])[]): Promise<(Buffer | null)[][]>;
  /** Ends the run: its executions are recorded as replays; says what they read, and the chain's input and output hashes. */
  end(outcome: 'complete' | 'error'): Promise<{ reads: ChainReads; inputHash: string | null; outputHash: string | null }>;
}

/** Offered by transforms. */
export interface TransformsService {
  /** Whether any transform is registered (without one there is nothing to record). */
  active(): boolean;
  /** How the cache of replayed results did since the start. */
  replayCache(): { readonly hits: number; readonly misses: number; readonly bytes: number };
  /** The replay cache's hits and misses per table (oid) since the last call. */
  takeReplayCacheCounts?(): ReadonlyMap<number, { readonly hits: number; readonly misses: number }>;
  /**
   * The chain of table `oid` in force at a moment (epoch microseconds), in order; null while the
   * versions are not loaded, a PgError when a version of it cannot be replayed by this sandbox.
   */
  chainAt?(oid: number, atMicros: bigint): readonly ChainLink[] | PgError | null;
  /** The context a replay as of the moment runs in, for this session (what `ctx` holds). */
  replayContext?(s: SessionInfo, moment: AsOfMoment): Readonly<Record<string, unknown>>;
  /**
   * Starts a run of table `oid`'s chain as of the moment over rows with these fields (the table's
   * columns, text format), recorded as replays of session `s`'s statement.
   */
  runTable?(s: SessionInfo, oid: number, moment: AsOfMoment, fields: readonly FieldDescription[]): TableRun;
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
  /**
   * The moment a text names, read as a SET of provenance.as_of reads it (in the session's
   * TimeZone), with the context a replay at it runs in as `user`.
   */
  momentOf?(s: SessionInfo, input: string, user: string): Promise<AsOfMoment>;
}

/** A tracked table an as-of statement reads, as the time-travel plugin resolved the reference. */
export interface AsOfTable {
  /** Where the reference stands in the statement's text (bytes). */
  readonly location: number;
  readonly oid: number;
  /** Schema-qualified. */
  readonly name: string;
  /** The table's columns now. */
  readonly columns: readonly { readonly name: string; readonly attnum: number }[];
  readonly rowSecurity: boolean;
}

/** Offered by materialize: which reads of the past are served from materialised versions. */
export interface MaterializeService {
  /**
   * Of the tracked tables an as-of statement reads, those served from a materialisation (by their
   * location): exactly what a replay would give them, else they replay.
   */
  serving(s: SessionInfo, text: string, tables: readonly AsOfTable[]): Promise<ReadonlyMap<number, number>>;
}

/** Every service, as the entry wires them; a plugin's own service is set once its factory ran. */
export interface Services extends ProxyServices {
  provenance?: ProvenanceService;
  transforms?: TransformsService;
  timetravel?: TimeTravelService;
  materialize?: MaterializeService;
}
