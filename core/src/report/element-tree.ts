/** A parsed XML element with local names (namespace prefixes dropped) — the parser's per-session tree. */
export interface XmlNode {
  readonly name: string;
  readonly attrs: Record<string, string>;
  readonly children: XmlNode[];
  /** Concatenated text directly inside this element (not trimmed). */
  text: string;
}

/** The first child with one of the given local names. */
export function child(node: XmlNode, ...names: string[]): XmlNode | undefined {
  return node.children.find((c) => names.includes(c.name));
}

/** All children with one of the given local names. */
export function children(node: XmlNode, ...names: string[]): XmlNode[] {
  return node.children.filter((c) => names.includes(c.name));
}

/** Trimmed text of the first child with one of the names; undefined when absent or empty. */
export function childText(node: XmlNode, ...names: string[]): string | undefined {
  const t = child(node, ...names)?.text.trim();
  return t ? t : undefined;
}

/** A node as a plain JSON value for `extra`: text, or `{ attrs, children, text }` when it has more. */
export function toPlain(node: XmlNode): unknown {
  const hasAttrs = Object.keys(node.attrs).length > 0;
  if (!hasAttrs && node.children.length === 0) return node.text.trim();
  const out: Record<string, unknown> = {};
  if (hasAttrs) out['@'] = { ...node.attrs };
  const text = node.text.trim();
  if (text) out['#text'] = text;
  for (const c of node.children) {
    const v = toPlain(c);
    const prev = out[c.name];
    out[c.name] = prev === undefined ? v : Array.isArray(prev) ? [...(prev as unknown[]), v] : [prev, v];
  }
  return out;
}

/** Adds `node` to an extra bag under its name (an array when the name repeats). */
export function keepExtra(extra: Record<string, unknown>, node: XmlNode): void {
  const v = toPlain(node);
  const prev = extra[node.name];
  extra[node.name] = prev === undefined ? v : Array.isArray(prev) ? [...(prev as unknown[]), v] : [prev, v];
}
