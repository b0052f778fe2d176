/**
 * Interactive config entry on a terminal, generated from a plugin's JSON Schema: one question per top-level
 * property with its title, description, enum choices and default; secret (`writeOnly`) fields are read without
 * echo. Answers are typed by the property's type; the whole config is validated afterwards by the schema.
 */
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { ConfigError } from '@integration-client/plugin-sdk/errors';

interface Property {
  type?: string;
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  writeOnly?: boolean;
}

/** A stdout that can be muted while a secret is typed. */
class MutableOut extends Writable {
  muted = false;
  override _write(chunk: Buffer, _e: BufferEncoding, cb: () => void): void {
    if (!this.muted) process.stdout.write(chunk);
    cb();
  }
}

export async function promptConfig(
  schema: Readonly<Record<string, unknown>>,
  given: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const props = (schema.properties ?? {}) as Record<string, Property>;
  const required = new Set((schema.required ?? []) as string[]);
  const output = new MutableOut();
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  // Lines through the async iterator are queued, so answers typed ahead are not lost between questions.
  const lines = rl[Symbol.asyncIterator]();
  const ask = async (prompt: string, secret: boolean): Promise<string> => {
    process.stdout.write(prompt);
    output.muted = secret;
    const next: IteratorResult<unknown> = await lines.next();
    output.muted = false;
    if (secret) process.stdout.write('\n');
    if (next.done) throw new ConfigError('input ended before every required field was answered');
    return String(next.value);
  };
  const config = { ...given };
  try {
    const keys = Object.keys(props).sort((a, b) => Number(required.has(b)) - Number(required.has(a)));
    for (const key of keys) {
      if (config[key] !== undefined) continue;
      const p = props[key]!;
      if (p.enum?.length === 1 && p.default !== undefined) continue; // nothing to choose
      const hint = p.enum ? ` (${p.enum.join(' | ')})` : p.type === 'boolean' ? ' (true | false)' : '';
      const dflt =
        p.default !== undefined
          ? ` [${JSON.stringify(p.default).replace(/^"|"$/g, '')}]`
          : required.has(key)
            ? ' (required)'
            : ' (optional, Enter to skip)';
      process.stdout.write(`\n${p.title ?? key}${hint}${p.description ? `\n  ${p.description}` : ''}\n`);
      for (;;) {
        const answer = (await ask(`${key}${dflt}: `, !!p.writeOnly)).trim();
        if (!answer) {
          if (required.has(key) && p.default === undefined) {
            process.stdout.write('  this field is required\n');
            continue;
          }
          break;
        }
        const value = typed(answer, p);
        if (value === undefined) {
          process.stdout.write(`  not a valid ${p.enum ? 'choice' : (p.type ?? 'value')}; try again\n`);
          continue;
        }
        config[key] = value;
        break;
      }
    }
  } finally {
    rl.close();
  }
  return config;
}

function typed(answer: string, p: Property): unknown {
  if (p.enum) return p.enum.find((e) => String(e).toLowerCase() === answer.toLowerCase());
  if (p.type === 'boolean')
    return /^(true|yes|y)$/i.test(answer) ? true : /^(false|no|n)$/i.test(answer) ? false : undefined;
  if (p.type === 'integer') return /^-?\d+$/.test(answer) ? Number(answer) : undefined;
  if (p.type === 'number') return Number.isNaN(Number(answer)) ? undefined : Number(answer);
  return answer;
}
