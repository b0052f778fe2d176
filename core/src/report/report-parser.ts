/**
 * Data path, second hop: appliance bytes → ReportParser → model objects (+ their exact XML) → kernel.
 *
 *   HTTP body chunks ─UTF-8 decode─▶ saxes (SAX, no DTD) ─▶ per-item element tree ─map─▶ Session/Presentation
 *                      └── raw text from `<session` to `</session>` is sliced out alongside ──▶ item XML
 *
 * Memory holds one item (its tree and its raw text) at a time, never the report, so it does not grow with the
 * report's size. Namespace-agnostic: names are matched on their local part; the root's namespace is recorded.
 */
import { SaxesParser, type SaxesTagPlain } from 'saxes';
import type { Presentation, Session } from '@integration-client/schemas';
import type { IcError } from '@integration-client/plugin-sdk';
import { SiteAccessError, type IcErrorLike } from '@integration-client/plugin-sdk';
import type { XmlNode } from './element-tree.js';
import { mapPresentation } from './presentation-mapper.js';
import { mapSession } from './session-mapper.js';
import { isNoDataText, XML_NAMES } from './xml-names.js';
import { ownedCopy } from './values.js';

/** Which report is parsed. */
export type ReportKind = 'session' | 'presentation';

/** One item of a report: its model and exact XML, or why it could not be read (the others go on). */
export type ParsedItem<T> =
  | { readonly ok: true; readonly lsid: string; readonly model: T; readonly xml: string }
  | {
      readonly ok: false;
      readonly lsid: string | undefined;
      readonly error: IcErrorLike & Error;
      readonly xml: string;
    };

/** Limits against hostile input. */
export interface ParseOptions {
  /** %SUPPORT_SITE_HOST% of the models. */
  readonly siteHost: string;
  /** Deepest element nesting accepted (default 64). */
  readonly maxDepth?: number;
  /** Largest single text node in characters (default 16 Mi). */
  readonly maxTextLength?: number;
}

const ROOTS: Record<ReportKind, readonly string[]> = {
  session: ['session_list'],
  presentation: XML_NAMES.presentationRoot,
};
const ITEMS: Record<ReportKind, readonly string[]> = { session: ['session'], presentation: XML_NAMES.presentation };

const NON_SPACE = /\S/;

const local = (name: string): string => {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
};

/** saxes' attribute object, reused; only namespace declarations and prefixes need work (rare in reports). */
function localAttributes(attrs: Record<string, string>): Record<string, string> {
  for (const k in attrs) {
    if (k.includes(':') || k === 'xmlns') {
      const out: Record<string, string> = {};
      for (const [key, v] of Object.entries(attrs))
        if (key !== 'xmlns' && !key.startsWith('xmlns:')) out[local(key)] = v;
      return out;
    }
  }
  return attrs;
}

function malformed(message: string, cause?: unknown): IcError {
  return new SiteAccessError('IC_ERR_SITE_REPORT_MALFORMED', `report is not well-formed: ${message}`, { cause });
}
function rejected(message: string): IcError {
  return new SiteAccessError('IC_ERR_SITE_REPORT_REJECTED', `report refused: ${message}`);
}

/**
 * Parses a SupportSession or PresentationSession report from a stream of bytes, yielding items one at a time.
 * An `<error>` root (any namespace) that means "no data" yields nothing; any other `<error>` throws
 * IC_ERR_SITE_API_ERROR with its text. Malformed or truncated XML throws IC_ERR_SITE_REPORT_MALFORMED (retryable);
 * a DTD, too deep nesting or an over-long text node throws IC_ERR_SITE_REPORT_REJECTED.
 */
export function parseReport(
  source: AsyncIterable<Uint8Array | string>,
  kind: 'session',
  options: ParseOptions,
): AsyncGenerator<ParsedItem<Session>>;
export function parseReport(
  source: AsyncIterable<Uint8Array | string>,
  kind: 'presentation',
  options: ParseOptions,
): AsyncGenerator<ParsedItem<Presentation>>;
export async function* parseReport(
  source: AsyncIterable<Uint8Array | string>,
  kind: ReportKind,
  options: ParseOptions,
): AsyncGenerator<ParsedItem<Session | Presentation>> {
  const state = new ParserState(kind, options);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for await (const chunk of source) {
    let text: string;
    try {
      text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    } catch (err) {
      throw malformed('the body is not valid UTF-8', err);
    }
    // Fed in slices, each drained before the next: the items of one slice are consumed (and die young) before
    // the next are built. A 1 MB chunk fed whole built ~80 sessions at once, which outlived a scavenge or two
    // and cost ~20 % of parsing in garbage collection.
    for (let at = 0; at < text.length; at += SLICE) {
      state.write(text.slice(at, at + SLICE)); // a whole short chunk comes back as itself, uncopied
      yield* state.drain();
    }
  }
  try {
    state.write(decoder.decode());
  } catch (err) {
    throw malformed('the body ends inside a UTF-8 character', err);
  }
  state.close();
  yield* state.drain();
}

/** Characters handed to the SAX parser at a time. */
const SLICE = 16 * 1024;

class ParserState {
  readonly #parser = new SaxesParser({ xmlns: false, position: true });
  readonly #out: ParsedItem<Session | Presentation>[] = [];
  readonly #maxDepth: number;
  readonly #maxText: number;
  /** Text not yet discarded, starting at absolute position #bufStart. */
  #buf = '';
  #bufStart = 0;
  #depth = 0;
  #root: { name: string; rawStart: string; namespace: string } | undefined;
  /** The item being read: its tree stack and where its raw text starts. */
  #stack: XmlNode[] = [];
  #itemStart = -1;
  #errorText: string | undefined;
  #textLength = 0;
  #failure: IcError | undefined;

  constructor(
    private readonly kind: ReportKind,
    private readonly options: ParseOptions,
  ) {
    this.#maxDepth = options.maxDepth ?? 64;
    this.#maxText = options.maxTextLength ?? 16 * 1024 * 1024;
    const p = this.#parser;
    p.on('doctype', () => this.#fail(rejected('a DOCTYPE/DTD is not allowed in a report')));
    p.on('opentag', (t) => this.#open(t));
    p.on('text', (t) => this.#text(t));
    p.on('cdata', (t) => this.#text(t));
    p.on('closetag', (t) => this.#close(t.name));
    p.on('error', (err) => this.#fail(malformed(err.message, err)));
  }

  write(text: string): void {
    this.#buf += text;
    try {
      this.#parser.write(text);
    } catch (err) {
      this.#fail(malformed((err as Error).message, err));
    }
    this.#throwIfFailed();
    if (this.#itemStart < 0) {
      // Outside an item, only a tag that may have started in this chunk must be kept.
      const keep = this.#buf.lastIndexOf('<');
      if (keep > 0) this.#trim(this.#bufStart + keep);
    }
  }

  close(): void {
    try {
      this.#parser.close();
    } catch (err) {
      this.#fail(malformed(`the body ended early (${(err as Error).message})`, err));
    }
    this.#throwIfFailed();
    if (!this.#root && this.#errorText === undefined) throw malformed('the body is empty');
    if (this.#errorText !== undefined && !isNoDataText(this.#errorText)) {
      throw new SiteAccessError('IC_ERR_SITE_API_ERROR', `the appliance answered: ${this.#errorText.trim()}`, {
        details: { text: this.#errorText.trim() },
      });
    }
  }

  *drain(): Generator<ParsedItem<Session | Presentation>> {
    while (this.#out.length) yield this.#out.shift()!;
  }

  #fail(err: IcError): void {
    this.#failure ??= err;
  }

  #throwIfFailed(): void {
    if (this.#failure) throw this.#failure;
  }

  #trim(absolute: number): void {
    this.#buf = this.#buf.slice(absolute - this.#bufStart);
    this.#bufStart = absolute;
  }

  /**
   * Absolute position of the `<` of the start tag just read (called from `opentag`, when the parser is past its
   * `>`). `<` cannot occur inside an attribute value, so the last one before the position is the tag's.
   */
  #tagStart(): number {
    return this.#bufStart + this.#buf.lastIndexOf('<', this.#parser.position - this.#bufStart - 1);
  }

  #open(tag: SaxesTagPlain): void {
    this.#depth++;
    if (this.#depth > this.#maxDepth) this.#fail(rejected(`elements nest deeper than ${this.#maxDepth}`));
    const n = local(tag.name);
    this.#textLength = 0;
    if (this.#depth === 2 && ITEMS[this.kind].includes(n)) {
      this.#itemStart = this.#tagStart();
      this.#trim(this.#itemStart);
    }
    if (this.#depth === 1) {
      if (n === 'error') {
        this.#errorText = '';
        return;
      }
      if (!ROOTS[this.kind].includes(n))
        this.#fail(malformed(`unexpected root element <${tag.name}>, expected <${ROOTS[this.kind][0]}>`));
      const prefix = tag.name.includes(':') ? `:${tag.name.slice(0, tag.name.indexOf(':'))}` : '';
      const rawStart = this.#buf.slice(this.#tagStart() - this.#bufStart, this.#parser.position - this.#bufStart);
      this.#root = {
        name: tag.name,
        rawStart: tag.isSelfClosing ? rawStart.replace(/\/\s*>$/, '>') : rawStart,
        namespace: tag.attributes[`xmlns${prefix}`] ?? '',
      };
      return;
    }
    if (this.#depth === 2 && n === 'error') {
      this.#errorText = '';
      return;
    }
    if (this.#itemStart < 0) return;
    // Namespace declarations and prefixes sit on the root or the item in practice; below, attributes pass as parsed
    // unless the document uses prefixes.
    const attrs = this.#depth <= 2 || this.#root?.name.includes(':') ? localAttributes(tag.attributes) : tag.attributes;
    const node: XmlNode = { name: n, attrs, children: [], text: '' };
    const parent = this.#stack[this.#stack.length - 1];
    if (parent) parent.children.push(node);
    this.#stack.push(node);
  }

  #text(t: string): void {
    this.#textLength += t.length;
    if (this.#textLength > this.#maxText)
      this.#fail(rejected(`a text node is longer than ${this.#maxText} characters`));
    const top = this.#stack[this.#stack.length - 1];
    if (top) {
      // Whitespace between the children of a container element is layout, not content: skip the concatenation.
      if (top.children.length > 0 && !NON_SPACE.test(t)) return;
      top.text += t;
    } else if (this.#errorText !== undefined) this.#errorText += t;
  }

  #close(name: string): void {
    this.#depth--;
    this.#textLength = 0;
    if (this.#itemStart < 0) return;
    const node = this.#stack.pop()!;
    if (this.#stack.length > 0) return;
    const end = this.#parser.position;
    const raw = this.#buf.slice(this.#itemStart - this.#bufStart, end - this.#bufStart);
    this.#itemStart = -1;
    this.#trim(end);
    this.#emit(node, raw, name);
  }

  #emit(node: XmlNode, raw: string, name: string): void {
    const root = this.#root!;
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n${root.rawStart}${raw}</${root.name}>\n`;
    const lsid = node.attrs.lsid;
    try {
      const model =
        this.kind === 'session'
          ? mapSession(node, this.options.siteHost, root.namespace)
          : mapPresentation(node, this.options.siteHost, root.namespace);
      this.#out.push({ ok: true, lsid: model.lsid, model, xml });
    } catch (err) {
      const error = new SiteAccessError(
        'IC_ERR_SITE_SESSION_INVALID',
        `<${name}${lsid ? ` lsid="${lsid}"` : ''}> cannot be read: ${(err as Error).message}`,
        { cause: err },
      );
      this.#out.push({ ok: false, lsid: lsid === undefined ? undefined : ownedCopy(lsid), error, xml });
    }
  }
}
