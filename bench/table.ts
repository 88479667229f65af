// The short human summary `npm run bench` prints on stderr after the JSON lines: one row per
// result, the same few columns for every bench (the JSON lines carry every figure).
import type { BenchResult } from './lib.ts';

type Row = Record<'bench' | 'what' | 'p50' | 'p99' | 'rate' | 'memory' | 'vs reference' | 'target', string>;
const COLUMNS: (keyof Row)[] = ['bench', 'what', 'p50', 'p99', 'rate', 'memory', 'vs reference', 'target'];

const num = (r: BenchResult, k: string): number | undefined =>
  typeof r[k] === 'number' && Number.isFinite(r[k]) ? r[k] : undefined;

/** µs → "82 µs" / "2.3 ms" / "1.24 s". */
function us(v: number | undefined): string {
  if (v === undefined) return '';
  if (v < 1_000) return `${v.toFixed(v < 10 ? 1 : 0)} µs`;
  if (v < 1_000_000) return `${(v / 1_000).toFixed(v < 10_000 ? 2 : v < 100_000 ? 1 : 0)} ms`;
  return `${(v / 1_000_000).toFixed(2)} s`;
}
const ms = (v: number | undefined): string => (v === undefined ? '' : us(v * 1_000));
const first = (...xs: string[]): string => xs.find((x) => x !== '') ?? '';

function what(r: BenchResult): string {
  for (const k of ['subject', 'case', 'path']) if (typeof r[k] === 'string') return r[k];
  if (typeof r.agents === 'number')
    return `${r.agents} agents${typeof r.links === 'string' ? `, ${r.links} links` : ''}`;
  if (r.bench === 'machine')
    return `${String(r.cpus)} CPU ${String(r.cpu_model)}, node ${String(r.node)}, load ${String(r.load1)}`;
  return '';
}

function row(r: BenchResult): Row {
  if (typeof r.error === 'string')
    return {
      bench: r.bench,
      what: what(r),
      p50: '',
      p99: '',
      rate: '',
      memory: '',
      'vs reference': '',
      target: `ERROR: ${r.error}`,
    };
  const ratio = [
    ['p50_vs_tls', '× TLS'],
    ['vs_tls', '× TLS'],
    ['ratio_p50', '× apache2 -t'],
    ['ssh_p50_over_ponio_p50', '× faster than ssh'],
    ['rss_over_bare_mb', ' MB over bare node'],
  ] as const;
  const vs = ratio.flatMap(([k, unit]) => {
    const v = num(r, k);
    return v === undefined ? [] : [`${k === 'rss_over_bare_mb' ? '+' : ''}${v}${unit}`];
  });
  const memory = first(
    num(r, 'panel_rss_per_agent_kb') !== undefined ? `${num(r, 'panel_rss_per_agent_kb')} KB/agent` : '',
    num(r, 'idle_rss_mb') !== undefined ? `${num(r, 'idle_rss_mb')} MB idle` : '',
  );
  return {
    bench: r.bench,
    what: what(r),
    p50: first(
      us(num(r, 'p50_us')),
      ms(num(r, 'create_p50_ms')),
      ms(num(r, 'ping_all_ms_p50')),
      ms(num(r, 'median_ms')),
      ms(num(r, 'bare_apache2_t_p50_ms')),
      ms(num(r, 'total_ms')),
      num(r, 'ready_ms') !== undefined ? `ready ${ms(num(r, 'ready_ms'))}` : '',
    ),
    p99: first(us(num(r, 'p99_us')), ms(num(r, 'create_p99_ms')), ms(num(r, 'ping_all_ms_max'))),
    rate: num(r, 'calls_per_s') !== undefined ? `${Math.round(num(r, 'calls_per_s') ?? 0)}/s` : '',
    memory,
    'vs reference': vs.join(', '),
    target: typeof r.meets_target === 'boolean' ? (r.meets_target ? 'met' : 'MISSED') : '',
  };
}

/** The results as an aligned plain-text table (no colours: it is often piped to a file). */
export function humanTable(results: readonly BenchResult[]): string {
  const rows = results.map(row);
  const width = (c: keyof Row): number => Math.max(c.length, ...rows.map((r) => r[c].length));
  const widths = COLUMNS.map(width);
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [
    line(COLUMNS),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map((r) => line(COLUMNS.map((c) => r[c]))),
  ].join('\n');
}
