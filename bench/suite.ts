/** What bench/run.ts expects from a suite module. */
export interface Suite {
  /** the suite's own usage text, printed for --help and for bad options */
  readonly usage: string;
  /** run with the arguments after the suite name; resolves to the process exit code */
  run(args: readonly string[]): Promise<number>;
}
