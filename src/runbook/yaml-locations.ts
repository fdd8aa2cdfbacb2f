import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';
import type { Location, TextOrigin } from './types.js';

/**
 * Finds where a path of the parsed data is written in the YAML source, so a
 * problem found on the data (by zod or by our own rules) can name its line.
 */
export class YamlLocator {
  constructor(
    private readonly source: string,
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly file: string,
  ) {}

  /**
   * The location of the value at `path` (or of its key, with `atKey`). When
   * the path does not exist (a missing key), the nearest existing ancestor.
   */
  locate(path: readonly (string | number)[], atKey = false): Location {
    let node: Node | null = this.doc.contents;
    let keyNode: Node | null = null;
    for (const segment of path) {
      const found = this.child(node, segment);
      if (found === undefined) break;
      node = found.value;
      keyNode = found.key;
    }
    const target = (atKey ? keyNode : null) ?? node ?? keyNode;
    return this.at(target?.range?.[0] ?? 0);
  }

  /** Whether `path` exists (tells a missing key from a wrong value). */
  has(path: readonly (string | number)[]): boolean {
    return this.nodeAt(path) !== undefined;
  }

  /**
   * Where the text of the scalar at `path` starts, and whether its lines are
   * the source's lines: true for literal blocks (`|`) and one-line scalars.
   */
  textOrigin(path: readonly (string | number)[]): TextOrigin {
    const node = this.nodeAt(path);
    if (!isScalar(node) || !node.range) return { ...this.locate(path), linesMatch: false };
    const start = this.at(node.range[0]);
    if (node.type === 'BLOCK_LITERAL') {
      // The header (`|`) has a line of its own; content line k is header line + k.
      const value = typeof node.value === 'string' ? node.value : '';
      return { ...this.literalBlockStart(start.line, value), linesMatch: true };
    }
    const quoted = node.type === 'QUOTE_DOUBLE' || node.type === 'QUOTE_SINGLE';
    const oneLine = start.line === this.at(node.range[1]).line;
    return { ...start, column: start.column + (quoted ? 1 : 0), linesMatch: oneLine };
  }

  at(offset: number): Location {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, column: col };
  }

  /** A literal block's first content line, and its indentation from the first non-blank line. */
  private literalBlockStart(headerLine: number, value: string): Location {
    const valueLines = value.split('\n');
    const k = valueLines.findIndex((l) => l.trim() !== '');
    const leading = (s: string): number => s.length - s.trimStart().length;
    const indent =
      k < 0 ? 0 : leading(this.sourceLine(headerLine + 1 + k)) - leading(valueLines[k] ?? '');
    return { file: this.file, line: headerLine + 1, column: Math.max(indent, 0) + 1 };
  }

  private sourceLine(line: number): string {
    const start = this.lines.lineStarts[line - 1];
    if (start === undefined) return '';
    const end = this.lines.lineStarts[line] ?? this.source.length;
    return this.source.slice(start, end).replace(/\r?\n$/, '');
  }

  private nodeAt(path: readonly (string | number)[]): Node | null | undefined {
    let node: Node | null = this.doc.contents;
    for (const segment of path) {
      const found = this.child(node, segment);
      if (found === undefined) return undefined;
      node = found.value;
    }
    return node;
  }

  private deref(node: unknown): Node | null {
    if (isAlias(node)) return (node.resolve(this.doc) as Node | undefined) ?? null;
    return (node as Node | null | undefined) ?? null;
  }

  /** The child at `segment`; a key with no value is located at its key. */
  private child(
    parent: Node | null,
    segment: string | number,
  ): { key: Node | null; value: Node | null } | undefined {
    const node = this.deref(parent);
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isScalar(p.key) && String(p.key.value) === String(segment),
      );
      if (pair === undefined) return undefined;
      const key = pair.key as Node;
      return { key, value: this.deref(pair.value) ?? key };
    }
    if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) return undefined;
      const value = this.deref(item);
      return { key: value, value };
    }
    return undefined;
  }
}
