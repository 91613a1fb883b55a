// A strict parser of Prometheus's text exposition format (version 0.0.4), for the tests: it throws
// on any line the format does not allow, on a TYPE or HELP given twice or after the family's
// samples, on a family whose samples are not together, on a series given twice, on a sample whose
// name does not fit its family's type, and on a histogram whose buckets are not cumulative.
// https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  type: 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';
  help: string | undefined;
  samples: Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const COMMENT = new RegExp(`^# (HELP|TYPE) (${NAME})(?: (.*))?$`);
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: (-?\\d+))?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<MetricFamily['type'], string[]> = {
  counter: [''],
  gauge: [''],
  untyped: [''],
  histogram: ['_bucket', '_sum', '_count'],
  summary: ['', '_sum', '_count'],
};

export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const typed = new Set<string>();
  const series = new Set<string>();
  let current: string | undefined;
  if (text !== '' && !text.endsWith('\n')) throw new Error('the exposition does not end with a line feed');
  const familyNamed = (name: string): MetricFamily => {
    const family = families.get(name) ?? { type: 'untyped' as const, help: undefined, samples: [] };
    families.set(name, family);
    return family;
  };
  text.split('\n').forEach((line, index) => {
    const fail = (why: string): never => {
      throw new Error(`line ${index + 1}: ${why}: ${JSON.stringify(line)}`);
    };
    const comment = COMMENT.exec(line);
    if (line === '' || (line.startsWith('#') && !comment)) return; // blank, or a plain comment
    if (comment) {
      const [, keyword, name, rest = ''] = comment as unknown as [string, string, string, string?];
      const family = familyNamed(name);
      if (family.samples.length > 0) fail(`${keyword} after the samples of ${name}`);
      if (keyword === 'HELP') {
        if (family.help !== undefined) fail(`a second HELP for ${name}`);
        family.help = unescape(rest, false);
      } else {
        if (!TYPES.has(rest)) fail(`unknown type ${rest}`);
        if (typed.has(name)) fail(`a second TYPE for ${name}`);
        typed.add(name);
        family.type = rest as MetricFamily['type'];
      }
      return;
    }
    const sample = SAMPLE.exec(line) ?? fail('not a sample line');
    const [, sampleName, labelText = '', valueText] = sample as unknown as [
      string,
      string,
      string | undefined,
      string,
    ];
    const familyName = familyOf(sampleName, families) ?? sampleName;
    const family = familyNamed(familyName);
    if (current !== familyName && family.samples.length > 0)
      fail(`the samples of ${familyName} are not together`);
    current = familyName;
    const labels = parseLabels(labelText, fail);
    const value = parseValue(valueText) ?? fail(`${valueText} is not a number`);
    const key = `${sampleName}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(key)) fail('a series given twice');
    series.add(key);
    if (family.type === 'histogram' && sampleName.endsWith('_bucket') && labels.le === undefined)
      fail('a bucket without le');
    if (family.type === 'counter' && !(value >= 0)) fail('a counter below zero');
    family.samples.push({ name: sampleName, labels, value });
  });
  for (const [name, family] of families) if (family.type === 'histogram') checkHistogram(name, family);
  return families;
}

/** The family a sample belongs to: its own name, or its name without the suffix its family's type allows. */
function familyOf(sampleName: string, families: Map<string, MetricFamily>): string | undefined {
  for (const [name, family] of families) {
    for (const suffix of SUFFIXES[family.type]) if (sampleName === name + suffix) return name;
  }
  return undefined;
}

function parseLabels(text: string, fail: (why: string) => never): Record<string, string> {
  const labels: Record<string, string> = {};
  for (let rest = text; rest !== '';) {
    const match = LABEL.exec(rest) ?? fail(`bad labels at ${JSON.stringify(rest)}`);
    const [whole, name, value, comma] = match as unknown as [string, string, string, string];
    if (name in labels) fail(`label ${name} given twice`);
    labels[name] = unescape(value, true);
    rest = rest.slice(whole.length);
    if (comma === ',' && rest === '') break; // a trailing comma is allowed
  }
  return labels;
}

/** As Go's strconv.ParseFloat reads it, which Prometheus uses: NaN and Inf in any case (prom-client writes "Nan"). */
function parseValue(text: string): number | undefined {
  if (/^[-+]?nan$/i.test(text)) return NaN;
  if (/^[-+]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  return /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text) ? Number(text) : undefined;
}

function unescape(text: string, quoteAllowed: boolean): string {
  return text.replace(/\\(.)/g, (escape, char: string) => {
    if (char === 'n') return '\n';
    if (char === '\\' || (quoteAllowed && char === '"')) return char;
    return escape;
  });
}

/** Per series: buckets in increasing le, counts that never decrease, +Inf equal to _count. */
function checkHistogram(name: string, family: MetricFamily): void {
  const bySeries = new Map<string, Sample[]>();
  for (const sample of family.samples) {
    const { le: _le, ...rest } = sample.labels;
    const key = JSON.stringify(Object.entries(rest).sort());
    if (sample.name === `${name}_bucket`) bySeries.set(key, [...(bySeries.get(key) ?? []), sample]);
  }
  for (const [key, buckets] of bySeries) {
    let previous = { le: -Infinity, count: 0 };
    for (const bucket of buckets) {
      const le = parseValue(bucket.labels.le ?? '');
      if (le === undefined || le <= previous.le || bucket.value < previous.count)
        throw new Error(`${name}${key}: buckets are not cumulative at le=${bucket.labels.le}`);
      previous = { le, count: bucket.value };
    }
    const count = family.samples.find(
      (sample) =>
        sample.name === `${name}_count` && JSON.stringify(Object.entries(sample.labels).sort()) === key,
    );
    if (previous.le !== Infinity || count?.value !== previous.count)
      throw new Error(`${name}${key}: the +Inf bucket is missing or differs from _count`);
  }
}
