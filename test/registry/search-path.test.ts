/**
 * Issue: an ordinary role that may create functions in a schema on the search path shadows a
 * function the proxy's own SQL calls, then makes the proxy (its often privileged login) run it,
 * by sending `NOTIFY provenance_registry`, which anyone may send.
 *
 * First the reproduction on both upstreams; then, on PostgreSQL, the same trick against
 * every function and operator name the proxy's SQL uses: the names are read from the SQL the proxy
 * actually sends (captured from its pg connections while it starts, loads the registry, records
 * executions and syncs transform files) and from the schema's migrations (the function bodies), so
 * the test follows the SQL as it changes.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { sharedCluster, startTarget, uniqueName } from '../support/proxy-matrix.js';
import { eventually } from '../support/eventually.js';
import { MIGRATIONS } from '../../plugins/registry/schema.js';
import { INSERT_EXECUTIONS_LEARNING_SQL, INSERT_EXECUTIONS_SQL, INSERT_NAMED_EXECUTIONS_SQL } from '../../plugins/provenance/execution-insert.js';
import { STORE_PARTS_SQL } from '../../plugins/provenance/execution-copy.js';

/** The shadow the issue shows: a format(text, name, name) that makes its caller's login superuser. */
const FORMAT_SHADOW = (victim: string): string => `
CREATE FUNCTION public.format(f text, a name, b name) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE ${victim} SUPERUSER';
  END IF;
  RETURN pg_catalog.format(f, a, b);
END $$`;

async function isSuperuser(c: pg.Client, role: string): Promise<boolean> {
  return (await c.query<{ s: boolean }>('SELECT rolsuper AS s FROM pg_catalog.pg_roles WHERE rolname = $1', [role])).rows[0]!.s;
}

/** Wait until a reload of the registry surely happened: a new transform applies to reads. */
async function reloaded(admin: pg.Client, table: string): Promise<void> {
  const name = uniqueName('probe');
  await admin.query(`SELECT provenance.register_transform($1, $2, ARRAY['v'], '(v) => "probed"')`, [name, table]);
  await eventually(() => admin.query(`SELECT v FROM ${table}`), (r) => r.rows[0]?.['v'] === 'probed');
}

const cluster = sharedCluster();
const superuser = (database: string, searchPath = 'pg_catalog'): pg.Client =>
  new pg.Client({ connectionString: cluster.url({ database }), options: `-c search_path=${searchPath}` });
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
});

/** A database of the shared cluster for this test alone (what it puts in public stays there). */
async function newDatabase(): Promise<string> {
  const database = uniqueName('shadowdb');
  const su = superuser('postgres');
  await su.connect();
  await su.query(`CREATE DATABASE ${database}`);
  await su.end();
  cleanup.push(async () => {
    const c = superuser('postgres');
    await c.connect();
    await c.query(`DROP DATABASE ${database} WITH (FORCE)`);
    await c.end();
  });
  return database;
}

for (const kind of ['embedded', 'postgres'] as const) {
  describe(`the proxy's own login against a shadowed public.format [${kind}]`, () => {
    it('does not run an ordinary role\'s function when it sends NOTIFY provenance_registry', async () => {
      const database = kind === 'postgres' ? await newDatabase() : 'postgres';
      const target = await startTarget(kind, [], kind === 'postgres' ? { upstream: cluster.url({ database }).replace(/\?.*$/, '') + '?sslmode=disable' } : {});
      const role = uniqueName('mallory');
      const password = kind === 'postgres' ? 'mallory' : '';
      try {
        await target.proxy.registryLoaded;
        const admin = await target.pg({ database });
        const table = uniqueName('probe_target');
        try {
          await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'mallory'`);
          if (kind === 'postgres') cleanup.unshift(async () => void (await cluster.psql(`DROP ROLE IF EXISTS ${role}`)));
          await admin.query(`GRANT CREATE ON SCHEMA public TO ${role}`);
          await admin.query(`CREATE TABLE ${table} (v text); INSERT INTO ${table} VALUES ('clear')`);
          const mallory = await target.pg({ database, user: role, password });
          try {
            await mallory.query(FORMAT_SHADOW(role));
            await mallory.query("NOTIFY provenance_registry, 'x'");
            await reloaded(admin, table);
            await mallory.query("NOTIFY provenance_registry, 'y'");
            await reloaded(admin, table);
            expect(await isSuperuser(admin, role)).toBe(false);
            // Every function of the schema has the fixed path, or an SQL-standard body (resolved when
            // created); only the reviewed ones run as their owner.
            const fns = await admin.query<{ name: string; fixed: boolean; definer: boolean }>(
              `SELECT p.proname AS name, p.prosqlbody IS NOT NULL OR coalesce(p.proconfig, '{}') @> ARRAY['search_path=pg_catalog, pg_temp'] AS fixed,
                      p.prosecdef AS definer
                 FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'provenance'::regnamespace`);
            expect(fns.rows.length).toBeGreaterThan(10);
            expect(fns.rows.filter((f) => !f.fixed)).toEqual([]);
            // In front of PostgreSQL the proxy (a superuser here) also creates the auth query's lookup,
            // which reads pg_authid as its owner and which no one else may run.
            const definers = [
              '_history_versions', '_new_version', 'adopt_table', 'capture_history', 'drop_materialization', 'history_ddl',
              'materialized_rows', 'prune_history', 'register_transform', 'set_materialize_policy', 'set_retention', 'storage_report',
              'track', 'untrack',
              ...(kind === 'postgres' ? ['user_lookup'] : []),
            ].sort();
            // Each tracked table has its own capture function, generated from its columns.
            const captures = (await admin.query<{ name: string }>(
              "SELECT 'history_' || target_oid || '_capture' AS name FROM provenance.history_table WHERE tracking")).rows.map((r) => r.name);
            expect(captures.length).toBeGreaterThan(0);
            expect(fns.rows.filter((f) => f.definer).map((f) => f.name).sort()).toEqual([...definers, ...captures].sort());
            if (kind === 'postgres') {
              const may = await admin.query<{ may: boolean }>(
                "SELECT pg_catalog.has_function_privilege($1, 'provenance.user_lookup(text)', 'EXECUTE') AS may", [role]);
              expect(may.rows[0]!.may).toBe(false);
            }
          } finally {
            await mallory.end();
          }
        } finally {
          await admin.end();
        }
      } finally {
        await target.proxy.stop(2_000);
      }
    });
  });
}

describe('NOTIFY provenance_registry from anyone [postgres]', () => {
  it('makes the proxy read the registry again at a bounded rate, however many arrive', async () => {
    const database = await newDatabase();
    const target = await startTarget('postgres', [], { upstream: cluster.url({ database }).replace(/\?.*$/, '') + '?sslmode=disable' });
    const su = superuser(database);
    await su.connect();
    try {
      await target.proxy.registryLoaded;
      // Registry reads scan transform_version (nothing else on this database reads it): counted
      // for one NOTIFY first, then for a flood of them.
      const scans = async (): Promise<number> => {
        await su.query('SELECT pg_stat_clear_snapshot()');
        const r = await su.query<{ n: string }>("SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n FROM pg_stat_user_tables WHERE relid = 'provenance.transform_version'::regclass");
        return Number(r.rows[0]!.n);
      };
      const sender = await target.pg({ database, user: 'trustuser', password: '' });
      await new Promise((r) => setTimeout(r, 1_500));
      const idle = await scans();
      await sender.query("NOTIFY provenance_registry, 'one'");
      await new Promise((r) => setTimeout(r, 2_500));
      const before = await scans();
      const perReload = before - idle;
      expect(perReload).toBeGreaterThan(0);
      const started = performance.now();
      for (let i = 0; i < 50; i++) await sender.query(Array.from({ length: 20 }, (_, j) => `NOTIFY provenance_registry, '${i}.${j}'`).join('; '));
      const seconds = (performance.now() - started) / 1000;
      await sender.end();
      // Statistics reach the shared view once the proxy's backend is idle for a second.
      await new Promise((r) => setTimeout(r, 2_500));
      const reloads = ((await scans()) - before) / perReload;
      expect(reloads).toBeGreaterThan(0);
      // One every 100 ms at most, and the one pending when the flood ended.
      expect(reloads).toBeLessThanOrEqual(Math.ceil(seconds * 10) + 2);
    } finally {
      await su.end();
      await target.proxy.stop(2_000);
    }
  });
});

/** Names of functions and operators in SQL texts (filtered against pg_catalog by the caller). */
function namesIn(texts: readonly string[]): { functions: Set<string>; operators: Set<string> } {
  const functions = new Set<string>();
  const operators = new Set<string>();
  for (const text of texts) {
    const noStrings = text.replace(/'(?:[^']|'')*'/g, "''");
    for (const m of noStrings.matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*\(/g)) functions.add(m[1]!.toLowerCase());
    for (const m of noStrings.matchAll(/[+\-*/<>=~!@#%^&|?]+/g)) if (!m[0].startsWith('--')) operators.add(m[0]);
  }
  return { functions, operators };
}

describe('the proxy\'s own SQL against every name it uses, shadowed in public [postgres]', () => {
  /** A proxy on `database` with a transform file, exercised as users would; returns the proxy's SQL texts. */
  async function exercise(database: string, attacker: string | null): Promise<string[]> {
    const texts: string[] = [];
    const original = pg.Client.prototype.query;
    const proto = pg.Client.prototype as unknown as { query: (this: pg.Client, q: unknown, ...rest: unknown[]) => unknown };
    proto.query = function (this: pg.Client, q: unknown, ...rest: unknown[]) {
      if ((this as unknown as { connectionParameters: { application_name?: string } }).connectionParameters.application_name === 'provenance-proxy') {
        texts.push(typeof q === 'string' ? q : String((q as { text?: string }).text ?? ''));
      }
      return (original as unknown as (...a: unknown[]) => unknown).call(this, q, ...rest);
    };
    const dir = mkdtempSync(path.join(tmpdir(), 'pp-shadow-'));
    writeFileSync(path.join(dir, 'mask_file.js'), '// @target public.people\n// @columns phone\n(v) => v === null ? null : "***"\n');
    const target = await startTarget('postgres', [], {
      upstream: cluster.url({ database }).replace(/\?.*$/, '') + '?sslmode=disable',
      transformsDir: dir,
      provenanceDurability: 'sync',
    });
    try {
      await target.proxy.registryLoaded;
      // `caller` searches public first: the schema's functions must not care. It only calls them,
      // with parameters; `admin` (pg_catalog first) reads what it needs to.
      const caller = await target.pg({ database, options: '-c search_path=public,pg_catalog' });
      const admin = await target.pg({ database, options: '-c search_path=pg_catalog,public' });
      const reader = await target.pg({ database, user: 'trustuser', password: '' });
      try {
        const name = uniqueName('mask');
        await caller.query('SELECT provenance.register_transform($1, $2, ARRAY[$3], $4, $5)', [name, 'public.people', 'email', '(v, p) => v === null ? null : v.slice(0, p.keep) + "***"', { keep: 1 }]);
        await caller.query('SELECT provenance.set_transform_params($1, $2)', [name, { keep: 2 }]);
        await caller.query('SELECT provenance.move_transform($1, 1)', [name]);
        await caller.query('SELECT provenance.disable_transform($1)', [name]);
        await caller.query('SELECT provenance.enable_transform($1)', [name]);
        await caller.query('SELECT provenance.function_hash($1)', ['x']);
        const read = await eventually(() => reader.query('SELECT email, phone FROM people'), (r) => r.rows[0]?.['email'] === 'ad***');
        expect(read.rows[0]).toEqual({ email: 'ad***', phone: '***' });
        const rec = await eventually(
          () => admin.query<{ result_id: string; output_hash: string }>('SELECT result_id, output_hash FROM provenance.executions WHERE transform_name = $1', [name]),
          (r) => r.rows.length > 0,
        );
        const { result_id: resultId, output_hash: outputHash } = rec.rows[0]!;
        const from = new Date(Date.now() - 3_600_000);
        const to = new Date(Date.now() + 3_600_000);
        await caller.query('SELECT * FROM provenance.lineage($1)', [resultId]);
        await caller.query('SELECT * FROM provenance.lineage_of_output($1)', [outputHash]);
        await caller.query('SELECT * FROM provenance.executions_of($1, $2, $3)', [name, from, to]);
        await caller.query('SELECT * FROM provenance.produced($1)', [outputHash]);
        await caller.query('SELECT * FROM provenance.table_history($1, $2, $3)', ['people', from, to]);
        if (attacker !== null) {
          const a = await target.pg({ database, user: attacker, password: 'mallory' });
          await a.query("NOTIFY provenance_registry, 'x'");
          await a.end();
        }
        await caller.query('SELECT provenance.drop_transform($1)', [name]);
        await eventually(() => reader.query('SELECT email FROM people'), (r) => r.rows[0]?.['email'] === 'ada@example.org');
      } finally {
        await caller.end();
        await admin.end();
        await reader.end();
      }
    } finally {
      proto.query = original as unknown as typeof proto.query;
      await target.proxy.stop(2_000);
      rmSync(dir, { recursive: true, force: true });
    }
    return texts;
  }

  async function peopleDatabase(): Promise<string> {
    const database = await newDatabase();
    const c = superuser(database);
    await c.connect();
    await c.query(`CREATE TABLE public.people (email text, phone text);
      INSERT INTO public.people VALUES ('ada@example.org', '+44 1');
      GRANT SELECT ON public.people TO trustuser`);
    await c.end();
    return database;
  }

  it('runs none of an attacker\'s functions or operators, whatever the search path puts first', async () => {
    // The names, from a clean database.
    const texts = [...await exercise(await peopleDatabase(), null), ...MIGRATIONS.map((m) => m.sql), INSERT_EXECUTIONS_SQL, INSERT_NAMED_EXECUTIONS_SQL, INSERT_EXECUTIONS_LEARNING_SQL, STORE_PARTS_SQL];
    expect(texts.length).toBeGreaterThan(MIGRATIONS.length + 5);
    const { functions, operators } = namesIn(texts);

    const database = await peopleDatabase();
    const attacker = uniqueName('mallory');
    const su = superuser(database);
    await su.connect();
    try {
      await su.query(`CREATE ROLE ${attacker} LOGIN PASSWORD 'mallory'`);
      cleanup.unshift(async () => void (await cluster.psql(`DROP ROLE IF EXISTS ${attacker}`)));
      await su.query(`GRANT CREATE ON SCHEMA public TO ${attacker}`);
      // The strongest position: public searched before pg_catalog (a database owner can set this),
      // so a function or operator of the same signature in public wins over pg_catalog's.
      await su.query(`ALTER DATABASE ${database} SET search_path = public, pg_catalog`);
      const known = await su.query<{ n: number; o: number }>(
        `SELECT (SELECT count(DISTINCT proname) FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY ($1))::int AS n,
                (SELECT count(DISTINCT oprname) FROM pg_operator WHERE oprnamespace = 'pg_catalog'::regnamespace AND oprname = ANY ($2))::int AS o`,
        [[...functions], [...operators]],
      );
      expect(known.rows[0]!.n).toBeGreaterThan(10);
      expect(known.rows[0]!.o).toBeGreaterThan(3);

      // As the attacker: a shadow of every pg_catalog overload of those names, counting its calls
      // (a sequence: the count survives the error the shadow raises).
      const mallory = new pg.Client({ connectionString: cluster.url({ database, user: attacker, password: 'mallory' }), options: '-c search_path=pg_catalog' });
      await mallory.connect();
      await mallory.query('CREATE SEQUENCE public.shadow_hits');
      await mallory.query('GRANT USAGE ON SEQUENCE public.shadow_hits TO PUBLIC');
      await mallory.query(`
        CREATE FUNCTION pg_temp.shadows(fnames text[], onames text[], OUT f int, OUT o int) LANGUAGE plpgsql AS $$
        DECLARE p record; i int := 0;
        BEGIN
          f := 0; o := 0;
          FOR p IN SELECT proname, pg_get_function_identity_arguments(oid) AS args, pg_get_function_result(oid) AS res
                     FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = ANY (fnames) AND prokind IN ('f', 'a', 'w') LOOP
            BEGIN
              EXECUTE format('CREATE FUNCTION public.%I(%s) RETURNS %s LANGUAGE plpgsql AS $b$ BEGIN PERFORM pg_catalog.nextval(%L); RAISE EXCEPTION %L; END $b$',
                             p.proname, p.args, p.res, 'public.shadow_hits', 'shadowed ' || p.proname);
              f := f + 1;
            EXCEPTION WHEN others THEN NULL;
            END;
          END LOOP;
          FOR p IN SELECT oprname, oprleft, oprright, oprresult FROM pg_operator
                    WHERE oprnamespace = 'pg_catalog'::regnamespace AND oprname = ANY (onames) LOOP
            i := i + 1;
            BEGIN
              EXECUTE format('CREATE FUNCTION public.shadow_op_%s(%s) RETURNS %s LANGUAGE plpgsql AS $b$ BEGIN PERFORM pg_catalog.nextval(%L); RAISE EXCEPTION %L; END $b$',
                             i, CASE WHEN p.oprleft = 0 THEN format_type(p.oprright, NULL) ELSE format_type(p.oprleft, NULL) || ', ' || format_type(p.oprright, NULL) END,
                             format_type(p.oprresult, NULL), 'public.shadow_hits', 'shadowed ' || p.oprname);
              EXECUTE format('CREATE OPERATOR public.%s (%s RIGHTARG = %s, FUNCTION = public.shadow_op_%s)',
                             p.oprname, CASE WHEN p.oprleft = 0 THEN '' ELSE 'LEFTARG = ' || format_type(p.oprleft, NULL) || ',' END,
                             format_type(p.oprright, NULL), i);
              o := o + 1;
            EXCEPTION WHEN others THEN NULL;
            END;
          END LOOP;
        END $$`);
      const shadows = (await mallory.query<{ f: number; o: number }>('SELECT * FROM pg_temp.shadows($1, $2)', [[...functions], [...operators]])).rows[0]!;
      await mallory.end();
      expect(shadows.f).toBeGreaterThan(50);
      expect(shadows.o).toBeGreaterThan(10);

      // The proxy migrates this database, loads, records, syncs files and serves, and the attacker
      // sends NOTIFY: no shadow runs, and the attacker stays an ordinary role.
      await exercise(database, attacker);
      const hits = await su.query<{ n: string }>('SELECT last_value AS n, is_called FROM public.shadow_hits');
      expect(hits.rows[0]).toMatchObject({ is_called: false });
      expect(await isSuperuser(su, attacker)).toBe(false);
    } finally {
      await su.end();
    }
  });
});
