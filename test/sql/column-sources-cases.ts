/**
 * Statements and the sources the analysis must find in them, over one schema that exists both as
 * SQL (for a real server's catalog) and in memory. Sources are written as strings:
 * `customers.email` a plain column, `expr(a.x,b.y)` an expression reading those columns,
 * `unknown`; filters `clause:table.column` (`clause:~table.column` when compared through an
 * expression); flows `target<table.column`. Tables of `public` go without their schema.
 */
import { expect } from 'vitest';
import type { StatementSources } from '../../plugins/sql/column-sources.js';
import type { ColumnSource, SessionNames } from '../../plugins/sql/source-model.js';

export const SCHEMA_SQL = `
CREATE SCHEMA app;
CREATE TABLE public.customers (id int PRIMARY KEY, email text, name text, created date);
CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int, amount numeric);
CREATE TABLE app.customers (id int, email text);
CREATE TABLE public."Weird Name" ("Mixed Col" text, x int);
CREATE VIEW public.customer_emails AS SELECT id, email FROM public.customers;
CREATE VIEW public.email_domains AS SELECT id, split_part(email, '@', 2) AS domain FROM public.customers;
CREATE VIEW public.nested AS SELECT e.email AS address FROM public.customer_emails e WHERE e.id > 0;
CREATE MATERIALIZED VIEW public.mv_emails AS SELECT id, email FROM public.customers;
CREATE FUNCTION public.leak(int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT email FROM public.customers WHERE id = $1 $$;
CREATE FUNCTION public.same(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
CREATE FUNCTION public.all_emails() RETURNS SETOF text LANGUAGE sql STABLE AS $$ SELECT email FROM public.customers $$;
CREATE PROCEDURE public.keep(text) LANGUAGE sql AS $$ SELECT $1 $$;
CREATE FUNCTION public.eq3(text, text) RETURNS bool LANGUAGE sql IMMUTABLE AS $$ SELECT $1 = $2 $$;
CREATE OPERATOR public.=== (LEFTARG = text, RIGHTARG = text, FUNCTION = public.eq3);
CREATE DOMAIN public.email_address AS text CHECK (VALUE LIKE '%@%');
CREATE FUNCTION app.lower(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT $1 $$;
-- Roles belong to the cluster: another test database may have made them first, even concurrently.
DO $$ BEGIN CREATE ROLE app; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
DO $$ BEGIN CREATE ROLE outsider; EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;
GRANT USAGE ON SCHEMA app TO app;
GRANT SELECT ON ALL TABLES IN SCHEMA app, public TO app;
GRANT SELECT ON public.customers TO outsider;
`;

export interface Expected {
  /** The columns of the first result. */
  readonly cols?: readonly string[];
  readonly results?: number;
  readonly filters?: readonly string[];
  readonly flows?: readonly string[];
  readonly certain?: boolean;
  readonly cursor?: readonly string[];
  readonly fetch?: string;
  /** The first result of a PREPAREd statement. */
  readonly prepared?: readonly string[];
}

export interface Case {
  readonly sql: string;
  readonly expect: Expected;
  readonly session?: SessionNames;
  /** Which statement of the text to check (default the first). */
  readonly statement?: number;
}

const ALL = 'expr(customers.created,customers.email,customers.id,customers.name)';
const c = (sql: string, expected: Expected, extra: Partial<Case> = {}): Case => ({ sql, expect: expected, ...extra });

export const CASES: readonly Case[] = [
  // The legitimate forms: plain references, however written.
  c('select email from customers', { cols: ['customers.email'] }),
  c('select c.email as e from customers c', { cols: ['customers.email'] }),
  c('select "email" from public."customers"', { cols: ['customers.email'] }),
  c('select U&"\\0065mail" from customers', { cols: ['customers.email'] }),
  c('select * from customers', { cols: ['customers.id', 'customers.email', 'customers.name', 'customers.created'] }),
  c('table customers', { cols: ['customers.id', 'customers.email', 'customers.name', 'customers.created'] }),
  c('select c.* from customers c join orders o on o.customer_id = c.id', {
    cols: ['customers.id', 'customers.email', 'customers.name', 'customers.created'],
    filters: ['join:customers.id', 'join:orders.customer_id'],
  }),
  c('select email from customers where email = $1', { cols: ['customers.email'], filters: ['where:customers.email'] }),
  c('select email from customers where id = $1', { cols: ['customers.email'], filters: ['where:customers.id'] }),
  c('select id from customers where lower(email) = lower($1)', { cols: ['customers.id'], filters: ['where:~customers.email'] }),
  c('select id from customers where email::int = 1', { cols: ['customers.id'], filters: ['where:~customers.email'] }),
  c('select id from customers c where c.email is not null and (c.name like $1 or c.id between 1 and 3)', {
    cols: ['customers.id'], filters: ['where:customers.email', 'where:customers.id', 'where:customers.name'],
  }),
  c('select email from app.customers', { cols: ['app.customers.email'] }),
  c('select "Mixed Col" from "Weird Name"', { cols: ['Weird Name.Mixed Col'] }),
  c('select t.e from customers t(i, e)', { cols: ['customers.email'] }),
  c('select s.e from (select email as e from customers) s', { cols: ['customers.email'] }),
  c('select t.a from (select email from customers) as t(a)', { cols: ['customers.email'] }),
  c('with x as (select email from customers) select email from x', { cols: ['customers.email'] }),
  c('with x(m) as materialized (select email from customers) select x.m from x', { cols: ['customers.email'] }),
  c('with customers as (select 1 as email) select email from customers', { cols: ['expr()'] }),
  c('select x.n from customers c, lateral (select c.email as n) x', { cols: ['customers.email'] }),
  c('select id, email from customers join orders using (id)', { cols: ['customers.id', 'customers.email'], filters: ['join:customers.id', 'join:orders.id'] }),
  c('select id from customers right join orders using (id)', { cols: ['orders.id'], filters: ['join:customers.id', 'join:orders.id'] }),
  c('select id from customers full join orders using (id)', { cols: ['expr(customers.id,orders.id)'] }),
  c('select * from customers natural join app.customers', {
    cols: ['customers.id', 'customers.email', 'customers.name', 'customers.created'],
    filters: ['join:app.customers.email', 'join:app.customers.id', 'join:customers.email', 'join:customers.id'],
  }),
  c('select j.email from (customers c join orders o on o.customer_id = c.id) as j', { cols: ['customers.email'] }),
  c('select email from customer_emails', { cols: ['customers.email'] }),
  c('select ce.*, o.amount from customer_emails ce join orders o on o.customer_id = ce.id', {
    cols: ['customers.id', 'customers.email', 'orders.amount'], filters: ['join:customers.id', 'join:orders.customer_id'],
  }),
  c('select address from nested', { cols: ['customers.email'], filters: ['where:customers.id'] }),
  c('select email from customers order by name', { cols: ['customers.email'], filters: ['order by:customers.name'] }),
  c('select name, count(*) from customers group by name having count(*) > 1 order by 2', {
    cols: ['customers.name', 'expr()'], filters: ['group by:customers.name'],
  }),
  c('select distinct on (email) id from customers order by email, id', {
    cols: ['customers.id'], filters: ['distinct on:customers.email', 'order by:customers.email', 'order by:customers.id'],
  }),
  c('select row_number() over (partition by email order by id) from customers', {
    cols: ['expr()'], filters: ['window:customers.email', 'window:customers.id'],
  }),
  c('select id from customers where exists (select 1 from orders o where o.customer_id = customers.id)', {
    cols: ['customers.id'], filters: ['where:customers.id', 'where:orders.customer_id'],
  }),
  c('select id from customers where email in (select email from app.customers)', {
    cols: ['customers.id'], filters: ['where:app.customers.email', 'where:customers.email'],
  }),
  c('select distinct email from customers', { cols: ['customers.email'] }),
  c('with recursive a as (select id from orders), orders as (select email as id from customers) select id from a', { cols: ['customers.email'] }),
  c('with customers as (select email from customers) select email from customers', { cols: ['customers.email'] }),
  c('delete from orders where id = $1 returning *', { cols: ['orders.id', 'orders.customer_id', 'orders.amount'], filters: ['where:orders.id'] }),
  c('update customers set name = $1 where current of c1', { results: 0, flows: [] }),
  c("select id from customers where email similar to 'a%' and name is distinct from $1 and (id, name) > (1, 'x')", {
    cols: ['customers.id'], filters: ['where:customers.email', 'where:customers.name', 'where:~customers.id', 'where:~customers.name'],
  }),
  c('select count(*) filter (where email is null) over w from customers window w as (partition by name)', {
    cols: ['expr(customers.email)'], filters: ['window:customers.name'],
  }),
  c('select name, created, count(*) from customers group by grouping sets ((name), (created), ())', {
    cols: ['customers.name', 'customers.created', 'expr()'], filters: ['group by:customers.created', 'group by:customers.name'],
  }),
  c('select c.id, g from customers c left join lateral generate_series(1, c.id) g on true', { cols: ['customers.id', 'expr(customers.id)'] }),
  c('select * from rows from (generate_series(1, 2), unnest(array[1])) with ordinality as r(a, b, n)', { cols: ['expr()', 'expr()', 'expr()'] }),
  c('select o.amount, x.id from orders o join customers c using (id) as x', { cols: ['orders.amount', 'orders.id'], filters: ['join:customers.id', 'join:orders.id'] }),
  c('select (select (select c.email) from orders o where o.customer_id = c.id limit 1) from customers c', {
    cols: ['expr(customers.email)'], filters: ['where:customers.id', 'where:orders.customer_id'],
  }),
  c('declare c2 cursor with hold for select c.name from customer_emails e join customers c using (id)', { results: 0, cursor: ['customers.name'], filters: ['join:customers.id'] }),
  c('select email from customers c tablesample bernoulli (50)', { cols: ['customers.email'] }),
  c('select email from customers for update', { cols: ['customers.email'] }),
  c('select email from customers limit (select count(*) from orders)', { cols: ['customers.email'] }),
  c('declare c1 cursor for select email from customers where id = $1', { results: 0, cursor: ['customers.email'], filters: ['where:customers.id'] }),
  c('fetch 10 from c1', { results: 0, fetch: 'c1' }),
  c('prepare p(int) as select email from customers where id = $1', { results: 0, prepared: ['customers.email'] }),
  c('select email from customers; select id from orders', { cols: ['orders.id'] }, { statement: 1 }),
  c('explain select email from customers', { results: 0 }),
  c('copy customers from stdin', { results: 0 }),
  c('select email from customers', { cols: ['app.customers.email'] }, { session: { searchPath: ['app', 'public'], user: 'postgres', tempSchema: null } }),
  c('select email from customers', { cols: ['app.customers.email'] }, { session: { searchPath: ['$user', 'public'], user: 'app', tempSchema: null } }),
  c('select email from customers', { cols: ['customers.email'] }, { session: { searchPath: ['app', 'public'], user: 'outsider', tempSchema: null } }),
  c('select email from customers', { certain: false }, { session: { searchPath: ['app', 'public'], tempSchema: null } }),
  c('select lower(email) from public.customers', { cols: ['unknown'], certain: false }, { session: { searchPath: ['app', 'public'], user: 'postgres', tempSchema: null } }),
  c('select email from customers where email OPERATOR(pg_catalog.=) $1', { cols: ['customers.email'], filters: ['where:customers.email'] }),

  // Reading around: expressions, whole rows, subqueries, set operations, views, functions.
  c('select id from customers where (select max(email) from customers) = $1', { cols: ['customers.id'], filters: ['where:~customers.email'] }),
  c('select id from customers where (select bool_or(email is null) from customers)', { cols: ['customers.id'], filters: ['where:~customers.email'] }),
  c('select lower(email) as e from customers group by e', { cols: ['expr(customers.email)'], filters: ['group by:~customers.email'] }),
  c("select email || '' from customers", { cols: ['expr(customers.email)'] }),
  c('select lower(email) from customers', { cols: ['expr(customers.email)'] }),
  c('select row_to_json(c) from customers c', { cols: [ALL] }),
  c('select c from customers c', { cols: [ALL] }),
  c('select row_to_json(c.*) from customers c', { cols: [ALL] }),
  c('select (c).email, (c.*).name from customers c', { cols: ['customers.email', 'customers.name'] }),
  c('select (select email from customers limit 1)', { cols: ['expr(customers.email)'] }),
  c('select (select max(c2.email) from customers c2 where c2.id = c.id) from customers c', { cols: ['expr(customers.email)'], filters: ['where:customers.id'] }),
  c('select array(select email from customers)', { cols: ['expr(customers.email)'] }),
  c('select email from customers union select name from customers', { cols: ['expr(customers.email,customers.name)'] }),
  c('select email from customers union all select email from app.customers', { cols: ['expr(app.customers.email,customers.email)'] }),
  c('select email from customers intersect select email from customers', { cols: ['expr(customers.email)'] }),
  c('select domain from email_domains', { cols: ['expr(customers.email)'] }),
  c('select email from mv_emails', { cols: ['expr(customers.email)'] }),
  c('select leak(id) from customers', { cols: ['unknown'], certain: false }),
  c('select same(email) from customers', { cols: ['unknown'], certain: false }),
  c('select * from all_emails()', { cols: ['unknown'], certain: false }),
  c("select query_to_xml('select email from customers', true, false, '')", { cols: ['unknown'], certain: false }),
  c("select email from customers where email === 'x'", { certain: false }),
  c('create table copy_of as select email from customers', { results: 0, flows: ['create table as<customers.email'] }),
  c('create materialized view mv2 as select id, email from customers', { results: 0, flows: ['create table as<customers.email', 'create table as<customers.id'] }),
  c('create table copy_of as select email from customers with no data', { results: 0, flows: [] }),
  c('select email into temp e2 from customers', { results: 0, flows: ['select into<customers.email'] }),
  c('select email::varchar(10) from customers', { cols: ['expr(customers.email)'] }),
  c('select cast(email as text) from customers', { cols: ['expr(customers.email)'] }),
  c('select email::email_address from customers', { cols: ['unknown'], certain: false }),
  c('select email collate "C" from customers', { cols: ['expr(customers.email)'] }),
  c('select count(email), max(name) from customers', { cols: ['expr(customers.email)', 'expr(customers.name)'] }),
  c("select count(*) from customers where email like '%x'", { cols: ['expr()'], filters: ['where:customers.email'] }),
  c("select string_agg(email, ',' order by name) from customers", { cols: ['expr(customers.email,customers.name)'] }),
  c("select string_agg(email, ',' order by name using ===) from customers", { cols: ['unknown'], certain: false }),
  c('select lag(email) over (order by id) from customers', { cols: ['expr(customers.email)'], filters: ['window:customers.id'] }),
  c("select case when email like '%@x' then 'x' else 'y' end from customers", { cols: ['expr(customers.email)'] }),
  c('select coalesce(name, email) from customers', { cols: ['expr(customers.email,customers.name)'] }),
  c("select json_build_object('e', email) from customers", { cols: ['expr(customers.email)'] }),
  c('select xmlelement(name e, email) from customers', { cols: ['expr(customers.email)'] }),
  c('select k, v from customers c, jsonb_each(to_jsonb(c)) as x(k, v)', { cols: [ALL, ALL] }),
  c('select g from generate_series(1, 3) g', { cols: ['expr()'] }),
  c('select nullif(email, name), greatest(id, 0), substring(email from 2 for 3), extract(year from created) from customers', {
    cols: ['expr(customers.email,customers.name)', 'expr(customers.id)', 'expr(customers.email)', 'expr(customers.created)'],
  }),
  c("select r.a from customers c, json_to_record(json_build_object('a', c.email)) as r(a text)", { cols: ['expr(customers.email)'] }),
  c("select x.v from customers c, xmltable('/r' passing xmlelement(name r, c.email) columns v text path '.') x", { cols: ['expr(customers.email)'] }),
  c('insert into app.customers default values returning *', { cols: ['app.customers.id', 'app.customers.email'], flows: [] }),
  c('select u from customers c, unnest(array[c.email]) u', { cols: ['expr(customers.email)'] }),
  c('select v.column1 from (values ((select email from customers limit 1))) v', { cols: ['expr(customers.email)'] }),
  c("values (1, 'a')", { cols: ['expr()', 'expr()'] }),
  c('with recursive r(n, e) as (select 1, email from customers union all select n + 1, e from r where n < 3) select e from r', {
    cols: ['expr(customers.email)'],
  }),
  c('select id from customers full join orders using (id)', { cols: ['expr(customers.id,orders.id)'] }),

  // Writes: what flows where, and what RETURNING returns.
  c('insert into orders (customer_id, amount) select id, length(email) from customers returning id', {
    cols: ['orders.id'], flows: ['insert<customers.email', 'insert<customers.id'],
  }),
  c('insert into orders values (1, 2, 3) returning amount * 2', { cols: ['expr(orders.amount)'], flows: [] }),
  c('insert into orders values (1, 2, 3)', { results: 0 }),
  c('update customers set name = email where id = $1 returning name', {
    cols: ['customers.name'], flows: ['update<customers.email'], filters: ['where:customers.id'],
  }),
  c('update orders o set amount = 0 from customers c where c.id = o.customer_id and c.email = $1', {
    results: 0, filters: ['where:customers.email', 'where:customers.id', 'where:orders.customer_id'],
  }),
  c('delete from customers where email = $1 returning email, upper(name)', {
    cols: ['customers.email', 'expr(customers.name)'], filters: ['where:customers.email'],
  }),
  c("insert into customers (id, email) values (1, 'a') on conflict (id) do update set email = excluded.email || customers.name", {
    results: 0, flows: ['update<customers.email', 'update<customers.name'],
  }),
  c('with moved as (delete from customers where id = 1 returning email) insert into app.customers (email) select email from moved', {
    results: 0, flows: ['insert<customers.email'], filters: ['where:customers.id'],
  }),
  c('merge into app.customers t using customers s on t.id = s.id when matched then update set email = s.email when not matched then insert (id, email) values (s.id, s.email)', {
    results: 0, flows: ['merge<customers.email', 'merge<customers.id'], filters: ['merge:app.customers.id', 'merge:customers.id'],
  }),
  c('copy (select email from customers) to stdout', { results: 0, flows: ['copy<customers.email'] }),
  c('copy customers (email) to stdout', { results: 0, flows: ['copy<customers.email'] }),
  c('explain analyze select email from customers', { results: 0, flows: ['explain analyze<customers.email'] }),
  c('refresh materialized view mv_emails', { results: 0, flows: ['refresh materialized view<customers.email', 'refresh materialized view<customers.id'] }),
  c("call keep('x')", { results: 0, certain: false }),

  // What the analysis says it does not understand.
  c('select nosuch from customers', { cols: ['unknown'], certain: false }),
  c('select * from nosuch', { cols: ['unknown'], certain: false }),
  c('select id from customers c join orders o on true where id = 1', { certain: false }),
  c('do $$ begin perform 1; end $$', { results: 0, certain: false }),
  c('create index on customers (email)', { results: 0, certain: false }),
  c('set search_path = app; select email from customers', { certain: false }, { statement: 1 }),
  c('set search_path = app', { results: 0, certain: true }),
  c("select set_config('search_path', 'app', false); select email from customers", { certain: false }, { statement: 1 }),
  c("call keep('x'); select email from customers", { certain: false }, { statement: 1 }),
  c("select r.a from json_to_record('{}') as r(a email_address)", { certain: false }),
  c('select email from customers', { certain: false }, { session: { searchPath: ['$user', 'public'], tempSchema: null } }),
  c('create view v2 as select email from customers', { results: 0, certain: true, flows: [] }),
];

export type NameOf = (oid: number, attnum: number) => string;

function source(s: ColumnSource, nameOf: NameOf): string {
  if (s.kind === 'column') return nameOf(s.oid, s.attnum);
  if (s.kind === 'unknown') return 'unknown';
  return `expr(${s.reads.map((r) => nameOf(r.oid, r.attnum)).sort().join(',')})`;
}

export function check(got: StatementSources, exp: Expected, nameOf: NameOf): void {
  const why = got.reasons.join('; ');
  if (exp.cols !== undefined) expect(got.results[0]?.columns.map((s) => source(s, nameOf)), why).toEqual(exp.cols);
  if (exp.results !== undefined) expect(got.results.length).toBe(exp.results);
  if (exp.filters !== undefined) {
    const filters = [...new Set(got.filters.map((f) => `${f.clause}:${f.direct ? '' : '~'}${nameOf(f.oid, f.attnum)}`))].sort();
    expect(filters, why).toEqual([...exp.filters].sort());
  }
  if (exp.flows !== undefined) expect(got.flows.map((f) => `${f.into}<${nameOf(f.oid, f.attnum)}`).sort(), why).toEqual([...exp.flows].sort());
  expect(got.certain, why).toBe(exp.certain ?? true);
  if (exp.cursor !== undefined) expect(got.cursor?.result.columns.map((s) => source(s, nameOf))).toEqual(exp.cursor);
  if (exp.fetch !== undefined) expect(got.fetch).toBe(exp.fetch);
  if (exp.prepared !== undefined) expect(got.prepare?.statement.results[0]?.columns.map((s) => source(s, nameOf))).toEqual(exp.prepared);
}

/** Every case, its statement analysed by `sourcesOf`; a failure names the statement. */
export async function checkCases(sourcesOf: (t: Case) => Promise<StatementSources | undefined>, nameOf: NameOf): Promise<void> {
  for (const t of CASES) {
    const got = await sourcesOf(t);
    if (got === undefined) throw new Error(`no statement in ${t.sql}`);
    try {
      check(got, t.expect, nameOf);
      expect(got.needs).toEqual([]);
    } catch (err) {
      throw new Error(`${t.sql}: ${String(err)}`);
    }
  }
}

/** Names of the tables of SCHEMA_SQL by oid and attnum, as the cases write them. */
export const NAMES_SQL = `
SELECT c.oid::int8 AS oid, a.attnum, CASE WHEN n.nspname = 'public' THEN '' ELSE n.nspname || '.' END || c.relname || '.' || a.attname AS name
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE n.nspname IN ('public', 'app') AND a.attnum > 0`;
