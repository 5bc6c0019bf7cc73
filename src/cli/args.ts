/**
 * A small argument parser driven by a table of options per command. Why not commander: we need
 * "everything after the first positional belongs to the program" (`service create sleep -x`), Docker's
 * wording for errors, and an exact exit code; the whole table stays visible in one place. See docs/cli.md.
 */

export type OptKind = 'bool' | 'string' | 'list';

export interface OptionDef {
  long: string;
  short?: string;
  kind: OptKind;
  /** Shown in help: `--replicas N`. */
  value?: string;
  help: string;
}

/** A mistake on the command line: printed as `Error: <message>`, exit code 1. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export class Parsed {
  constructor(
    readonly values: Map<string, string | boolean | string[]>,
    readonly positionals: string[],
  ) {}

  has(long: string): boolean {
    return this.values.has(long);
  }
  bool(long: string): boolean {
    return this.values.get(long) === true;
  }
  str(long: string): string | undefined {
    const v = this.values.get(long);
    return typeof v === 'string' ? v : undefined;
  }
  list(long: string): string[] {
    const v = this.values.get(long);
    return Array.isArray(v) ? v : [];
  }
}

export interface ParseOptions {
  /** The first positional ends option parsing: the rest is a program and its arguments. */
  stopAtPositional?: boolean;
}

export function parseArgs(argv: readonly string[], defs: readonly OptionDef[], opts: ParseOptions = {}): Parsed {
  const byLong = new Map(defs.map((d) => [d.long, d]));
  const byShort = new Map(defs.filter((d) => d.short).map((d) => [d.short!, d]));
  const values = new Map<string, string | boolean | string[]>();
  const positionals: string[] = [];

  const set = (d: OptionDef, v: string | boolean) => {
    if (d.kind === 'list') {
      const cur = values.get(d.long);
      values.set(d.long, [...(Array.isArray(cur) ? cur : []), v as string]);
    } else values.set(d.long, v);
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const d = byLong.get(name);
      if (!d) throw new UsageError(`unknown flag: --${name}`);
      if (d.kind === 'bool') {
        if (eq < 0) set(d, true);
        else {
          const v = a.slice(eq + 1);
          if (v !== 'true' && v !== 'false') throw new UsageError(`invalid value "${v}" for --${name}: expected true or false`);
          set(d, v === 'true');
        }
        continue;
      }
      if (eq >= 0) set(d, a.slice(eq + 1));
      else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        set(d, argv[++i]!);
      }
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      // -d, -e K=V, -eK=V, -dq
      for (let j = 1; j < a.length; j++) {
        const ch = a[j]!;
        const d = byShort.get(ch);
        if (!d) throw new UsageError(`unknown shorthand flag: '${ch}' in ${a}`);
        if (d.kind === 'bool') {
          set(d, true);
          continue;
        }
        const rest = a.slice(j + 1);
        if (rest) set(d, rest.startsWith('=') ? rest.slice(1) : rest);
        else {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${ch}' in -${ch}`);
          set(d, argv[++i]!);
        }
        break;
      }
      continue;
    }
    positionals.push(a);
    if (opts.stopAtPositional) {
      positionals.push(...argv.slice(i + 1));
      break;
    }
  }
  return new Parsed(values, positionals);
}

/** The options part of a help text. */
export function formatOptions(defs: readonly OptionDef[]): string {
  const rows = defs.map((d) => {
    const flag = `${d.short ? `-${d.short}, ` : '    '}--${d.long}${d.kind === 'bool' ? '' : ` ${d.value ?? (d.kind === 'list' ? 'list' : 'string')}`}`;
    return [flag, d.help] as const;
  });
  const w = Math.max(0, ...rows.map(([f]) => f.length));
  return rows.map(([f, h]) => `  ${f.padEnd(w)}   ${h}`).join('\n');
}
