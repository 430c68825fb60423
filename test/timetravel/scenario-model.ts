/**
 * What the scenario test expects, computed in plain JavaScript from what it wrote and when: the
 * rows of each table as of a moment (every transaction whose now() is at or before it) and the
 * transform chain in force then, applied here by hand, never through the proxy's code.
 */

export interface Customer { id: number; name: string | null; email: string | null }
export interface Order { id: number; customer_id: number; amount: number; note: string | null }

export interface Tables { customers: Map<number, Customer>; orders: Map<number, Order> }

/** One step of a chain: a column transform maps a value, a row transform keeps or drops a row. */
export type Step<R> =
  | { name: string; column: keyof R & string; fn: (v: string | null) => string | null }
  | { name: string; row: (r: R) => boolean };

export interface Chains { customers: Step<Customer>[]; orders: Step<Order>[] }

interface Event { at: bigint; apply: (t: Tables) => void }

export class Timeline {
  private readonly events: Event[] = [];
  private readonly chains: { at: bigint; chains: Chains }[] = [];

  /** A committed transaction whose now() was `at` (microseconds since the epoch). */
  wrote(at: bigint, apply: (t: Tables) => void): void {
    this.events.push({ at, apply });
  }

  /** The chains in force from `at` on (the moment after the registry changes committed). */
  chainsFrom(at: bigint, chains: Chains): void {
    this.chains.push({ at, chains: { customers: [...chains.customers], orders: [...chains.orders] } });
  }

  rowsAt(at: bigint): Tables {
    const t: Tables = { customers: new Map(), orders: new Map() };
    for (const e of this.events) if (e.at <= at) e.apply(t);
    return t;
  }

  chainsAt(at: bigint): Chains {
    let found: Chains | undefined;
    for (const c of this.chains) if (c.at <= at) found = c.chains;
    if (!found) throw new Error('no chain registered by then');
    return found;
  }

  /** `SELECT id, name, email FROM customers ORDER BY id` served at `at`. */
  customersAt(at: bigint): Customer[] {
    return served(sorted(this.rowsAt(at).customers), this.chainsAt(at).customers);
  }

  /** `SELECT id, customer_id, amount, note FROM orders ORDER BY id` served at `at`. */
  ordersAt(at: bigint): Order[] {
    return served(sorted(this.rowsAt(at).orders), this.chainsAt(at).orders);
  }

  /** Orders joined with their customers, `o.id, c.email, o.note`, served at `at`. */
  joinAt(at: bigint): [number, string | null, string | null][] {
    const customers = new Map(this.customersAt(at).map((c) => [c.id, c]));
    const rows = this.rowsAt(at);
    const orders = served(sorted(rows.orders).filter((o) => rows.customers.has(o.customer_id)), this.chainsAt(at).orders);
    return orders.map((o) => [o.id, customers.get(o.customer_id)!.email, o.note]);
  }
}

function sorted<R extends { id: number }>(m: Map<number, R>): R[] {
  return [...m.values()].map((r) => ({ ...r })).sort((a, b) => a.id - b.id);
}

function served<R>(rows: R[], chain: Step<R>[]): R[] {
  let out = rows;
  for (const step of chain) {
    if ('row' in step) out = out.filter(step.row);
    else out = out.map((r) => ({ ...r, [step.column]: step.fn(r[step.column] as string | null) }));
  }
  return out;
}
