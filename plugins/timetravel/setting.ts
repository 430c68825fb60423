/**
 * One setting with the server's GUC semantics, kept by the proxy: a SET in a transaction block
 * lasts if it commits and is undone if it rolls back (or is rolled back to a savepoint before
 * it); SET LOCAL lasts until its transaction ends; outside a transaction block SET LOCAL changes
 * nothing (the server only warns). RESET and SET … TO DEFAULT go back to the value the session
 * started with (its startup options), as the server's reset value does.
 */
interface Saved<T> {
  readonly current: T | null;
  readonly atCommit: T | null;
}

export class TxSetting<T> {
  private current: T | null;
  /** What the value becomes when the open transaction commits (its SETs, not its SET LOCALs). */
  private atCommit: T | null;
  /** The value before the open transaction: what a rollback restores. */
  private before: T | null = null;
  private open = false;
  private readonly savepoints: { readonly name: string; readonly saved: Saved<T> }[] = [];

  constructor(private readonly resetValue: T | null) {
    this.current = resetValue;
    this.atCommit = resetValue;
  }

  get value(): T | null {
    return this.current;
  }

  get initial(): T | null {
    return this.resetValue;
  }

  get inTransaction(): boolean {
    return this.open;
  }

  /** SET (null: RESET, or SET … TO DEFAULT). */
  set(value: T | null | 'default', local: boolean): void {
    const v = value === 'default' ? this.resetValue : value;
    if (local && !this.open) return;
    this.current = v;
    if (!local) this.atCommit = v;
  }

  begin(): void {
    if (this.open) return;
    this.open = true;
    this.before = this.current;
    this.atCommit = this.current;
    this.savepoints.length = 0;
  }

  end(committed: boolean): void {
    if (!this.open) return;
    this.open = false;
    this.current = committed ? this.atCommit : this.before;
    this.atCommit = this.current;
    this.savepoints.length = 0;
  }

  savepoint(name: string): void {
    if (this.open) this.savepoints.push({ name, saved: { current: this.current, atCommit: this.atCommit } });
  }

  /** ROLLBACK TO SAVEPOINT: the values as they were when it was set; the savepoint stays. */
  rollbackTo(name: string): void {
    const i = this.find(name);
    if (i < 0) return;
    this.savepoints.length = i + 1;
    const s = this.savepoints[i]!.saved;
    this.current = s.current;
    this.atCommit = s.atCommit;
  }

  /** RELEASE SAVEPOINT: it and those after it are gone; the values stay. */
  release(name: string): void {
    const i = this.find(name);
    if (i >= 0) this.savepoints.length = i;
  }

  private find(name: string): number {
    for (let i = this.savepoints.length - 1; i >= 0; i--) if (this.savepoints[i]!.name === name) return i;
    return -1;
  }
}
