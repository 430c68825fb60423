/**
 * The catalog as the guards read it: PostgreSQL's, read over the proxy's own connection, with
 * views taken as copies of what their queries compute. The server's RowDescription names a
 * view's own column, not the table column under it, so a transform never binds to a column read
 * through a view: for the guards it is an expression of what the view reads (the analysis treats
 * materialized views so already).
 */
import { PgCatalog, type CatalogFunction, type CatalogNeed, type CatalogRelation } from '../../sql/catalog.js';
import type { VersionedCatalog } from '../../sql/sources-cache.js';
import type { SqlRunner } from '../../registry/migrate.js';

export class GuardCatalog implements VersionedCatalog {
  private readonly pg: PgCatalog;

  constructor(db: SqlRunner) {
    this.pg = new PgCatalog(db);
  }

  get version(): number {
    return this.pg.version;
  }

  invalidate(): void {
    this.pg.invalidate();
  }

  load(needs: readonly CatalogNeed[]): Promise<void> {
    return this.pg.load(needs);
  }

  relation(schema: string, name: string): CatalogRelation | null | undefined {
    const r = this.pg.relation(schema, name);
    return r?.kind === 'view' ? { ...r, kind: 'matview' } : r;
  }

  functions(schema: string, name: string): readonly CatalogFunction[] | undefined {
    return this.pg.functions(schema, name);
  }

  operatorIsBuiltin(schema: string, name: string): boolean | null | undefined {
    return this.pg.operatorIsBuiltin(schema, name);
  }

  typeIsBuiltin(schema: string, name: string): boolean | null | undefined {
    return this.pg.typeIsBuiltin(schema, name);
  }

  schemaUsable(schema: string, role: string): boolean | null | undefined {
    return this.pg.schemaUsable(schema, role);
  }
}
