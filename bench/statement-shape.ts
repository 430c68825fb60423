/**
 * statement-shape: what provenance pays to shape a statement's text (fingerprint, normalised text,
 * operation, summary) for point lookups whose key is a literal, so that each text is new: the
 * shape computed in full for each text, against the shape cache that shapes a text differing from
 * a seen one only in its constants without the parser. Microseconds per text, CPU and wall.
 */
import { SqlAnalyser } from '../plugins/sql/analyser.js';
import { ShapeCache } from '../plugins/provenance/shape-cache.js';
import { shapeOf } from '../plugins/provenance/statement-shape.js';
import { defineSuite, parseNamedOptions, positiveInt, quickRun } from './support/suite-runner.js';
import { median } from './support/stats.js';
import { fixed, formatTable } from './support/table.js';

const USAGE = `Usage: npm run bench -- statement-shape [options]

Microseconds per statement text to shape pgbench-like point lookups that each carry another
literal key: statement-shape.ts's shapeOf on every text, against the shape cache the provenance
plugin uses; interleaved runs, medians of CPU and wall time per text.

  --runs R    timed runs of each case; medians   (default 7; 3 with BENCH_QUICK=1)
  --texts N   texts per case and run             (default 5000; 1000 with BENCH_QUICK=1)
  --help      show this text
`;

interface Options {
  runs: number;
  texts: number;
}

function parseOptions(args: readonly string[]): Options | 'help' {
  const v = parseNamedOptions(args, ['runs', 'texts'] as const);
  if (v === 'help') return 'help';
  const quick = quickRun();
  return { runs: positiveInt('runs', v.runs, quick ? 3 : 7), texts: positiveInt('texts', v.texts, quick ? 1000 : 5000) };
}

/** pgbench's select-only statement and the provenance benchmark's, each with a fresh key. */
const TEMPLATES: readonly ((k: number) => string)[] = [
  (k) => `SELECT abalance FROM pgbench_accounts WHERE aid = ${k};`,
  (k) => `SELECT id, email, name FROM bench_people WHERE id = ${k};`,
  (k) => `SELECT id, email FROM bench_people WHERE name = 'person ${k}' AND id > ${k % 100}`,
];

type Case = 'shapeOf' | 'cache';

async function benchmark(opts: Options): Promise<number> {
  const sql = await SqlAnalyser.load();
  let key = 1;
  const texts = (): string[] => Array.from({ length: opts.texts }, (_, i) => TEMPLATES[i % TEMPLATES.length]!(key++));
  const cache = new ShapeCache(sql);
  const cases: Record<Case, (t: string) => unknown> = { shapeOf: (t) => shapeOf(sql, t), cache: (t) => cache.get(t) };
  const samples: Record<Case, { cpu: number[]; wall: number[] }> = { shapeOf: { cpu: [], wall: [] }, cache: { cpu: [], wall: [] } };
  for (let run = 0; run <= opts.runs; run++) {
    for (const name of Object.keys(cases) as Case[]) {
      const batch = texts();
      const cpu0 = process.cpuUsage();
      const wall0 = performance.now();
      for (const t of batch) cases[name](t);
      const wall = ((performance.now() - wall0) * 1000) / batch.length;
      const used = process.cpuUsage(cpu0);
      // The first round warms the parser and the caches up; it is not counted.
      if (run === 0) continue;
      samples[name].cpu.push((used.user + used.system) / batch.length);
      samples[name].wall.push(wall);
    }
  }
  const row = (name: Case): string[] => [name === 'cache' ? 'shape cache' : 'shapeOf each text', fixed(median(samples[name].cpu), 1), fixed(median(samples[name].wall), 1)];
  const out = [
    'provenance-proxy statement shape benchmark',
    `  ${opts.texts} texts per case and run, ${opts.runs} run(s), each text with a key not seen before; ${TEMPLATES.length} templates`,
    '',
    formatTable(['case', 'cpu us/text', 'wall us/text'], [row('shapeOf'), row('cache')], ['left', 'right', 'right']),
    '',
    `shape cache vs shapeOf: ${fixed((median(samples.cache.cpu) ?? NaN) / (median(samples.shapeOf.cpu) ?? NaN), 3)} cpu`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

export const suite = defineSuite('statement-shape', USAGE, parseOptions, benchmark);
