import type { Node } from '@babel/types';

/** A minimal view of Babel's AST, for reading migrations: every node has a type, a location, children. */
export interface Program {
  body: AnyNode[];
}
export type AnyNode = Node & Record<string, unknown>;

export function isNode(value: unknown): value is AnyNode {
  return typeof value === 'object' && value !== null && typeof (value as Node).type === 'string';
}

export function children(node: AnyNode): AnyNode[] {
  const out: AnyNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'loc' || key.endsWith('Comments') || key === 'extra') continue;
    if (Array.isArray(value)) for (const v of value) if (isNode(v)) out.push(v);
    if (isNode(value)) out.push(value);
  }
  return out;
}

export function lineOf(node: AnyNode): number {
  return node.loc?.start.line ?? 1;
}

/** The name of an identifier, a string literal, or a non-computed member's property. */
export function nameOf(node: unknown): string | undefined {
  if (!isNode(node)) return undefined;
  if (node.type === 'Identifier') return node.name;
  if (node.type === 'StringLiteral') return node.value;
  return undefined;
}

export function memberProperty(node: AnyNode): string | undefined {
  if (node.type !== 'MemberExpression' && node.type !== 'OptionalMemberExpression')
    return undefined;
  return node.computed && node.property.type !== 'StringLiteral'
    ? undefined
    : nameOf(node.property);
}

/** `x as Foo`, `(x)`, `x satisfies Foo`: the expression itself. */
export function unwrap(node: AnyNode): AnyNode {
  let current = node;
  while (
    [
      'TSAsExpression',
      'TSSatisfiesExpression',
      'ParenthesizedExpression',
      'TSNonNullExpression',
    ].includes(current.type)
  ) {
    current = current.expression as AnyNode;
  }
  return current;
}

export function functionBody(node: AnyNode): AnyNode | undefined {
  if (
    [
      'FunctionDeclaration',
      'FunctionExpression',
      'ArrowFunctionExpression',
      'ObjectMethod',
    ].includes(node.type)
  )
    return node.body as AnyNode;
  return undefined;
}

/** Visit every node depth-first; `visit` returns false to skip a node's children. */
export function walk(nodes: AnyNode[], visit: (node: AnyNode) => boolean): void {
  for (const node of nodes) if (visit(node)) walk(children(node), visit);
}
