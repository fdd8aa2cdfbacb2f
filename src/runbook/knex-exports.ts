import {
  functionBody,
  memberProperty,
  nameOf,
  unwrap,
  walk,
  type AnyNode,
  type Program,
} from './js-ast.js';

/** What a migration module exports (up, down, config), found in its CommonJS and ESM forms. */
/** `exports.x`, `module.exports.x`: the exported name; `module.exports`: '*'. */
function commonJsTarget(node: AnyNode): string | undefined {
  if (node.type !== 'MemberExpression') return undefined;
  const object = node.object as AnyNode;
  const property = memberProperty(node);
  if (object.type === 'Identifier' && object.name === 'exports') return property;
  if (object.type === 'Identifier' && object.name === 'module' && property === 'exports')
    return '*';
  if (commonJsTarget(object) === '*') return property;
  return undefined;
}

export interface Exports {
  get(name: string): AnyNode | undefined;
  /** Something is exported that cannot be read statically (`module.exports = make()`). */
  opaque: boolean;
  commonJs: AnyNode[];
  esm: AnyNode[];
}

export function exportsOf(program: Program): Exports {
  const declared = new Map<string, AnyNode>();
  for (const statement of program.body) {
    if (statement.type === 'FunctionDeclaration' && statement.id)
      declared.set(statement.id.name, statement);
    const declaration = (
      statement.type === 'ExportNamedDeclaration' ? statement.declaration : statement
    ) as AnyNode | null;
    if (declaration?.type === 'VariableDeclaration') {
      for (const d of declaration.declarations) {
        if (d.id.type === 'Identifier' && d.init) declared.set(d.id.name, d.init as AnyNode);
      }
    }
    if (declaration?.type === 'FunctionDeclaration' && declaration.id)
      declared.set(declaration.id.name, declaration);
  }
  const resolve = (node: AnyNode): AnyNode => {
    let current = node;
    for (let i = 0; i < 5 && current.type === 'Identifier'; i++) {
      const next = declared.get(current.name);
      if (!next) break;
      current = next;
    }
    return unwrap(current);
  };
  const found = new Map<string, AnyNode>();
  let opaque = false;
  const commonJs: AnyNode[] = [];
  const esm: AnyNode[] = [];
  const fromObject = (object: AnyNode): void => {
    const resolved = resolve(object);
    if (resolved.type !== 'ObjectExpression') {
      opaque = true;
      return;
    }
    for (const property of resolved.properties) {
      if (property.type === 'SpreadElement') opaque = true;
      const name = 'key' in property ? nameOf(property.key) : undefined;
      if (!name) continue;
      if (property.type === 'ObjectMethod') found.set(name, property as AnyNode);
      else if (property.type === 'ObjectProperty')
        found.set(name, resolve(property.value as AnyNode));
    }
  };
  walk(program.body, (node) => {
    if (node.type === 'AssignmentExpression') {
      const target = commonJsTarget(node.left as AnyNode);
      if (target === '*') fromObject(node.right as AnyNode);
      else if (target) found.set(target, resolve(node.right as AnyNode));
      if (target) commonJs.push(node);
    }
    if (node.type === 'ExportNamedDeclaration' || node.type === 'ExportDefaultDeclaration') {
      esm.push(node);
    }
    if (node.type === 'ImportDeclaration' || node.type === 'ExportAllDeclaration') esm.push(node);
    return true;
  });
  for (const statement of program.body) {
    if (statement.type === 'ExportNamedDeclaration') {
      const declaration = statement.declaration as AnyNode | null;
      if (declaration?.type === 'FunctionDeclaration' && declaration.id)
        found.set(declaration.id.name, declaration);
      if (declaration?.type === 'VariableDeclaration') {
        for (const d of declaration.declarations) {
          if (d.id.type === 'Identifier' && d.init)
            found.set(d.id.name, resolve(d.init as AnyNode));
        }
      }
      for (const specifier of statement.specifiers) {
        if (specifier.type !== 'ExportSpecifier') continue;
        const name = nameOf(specifier.exported);
        if (name) found.set(name, resolve(specifier.local as AnyNode));
      }
    }
    if (statement.type === 'ExportDefaultDeclaration') fromObject(statement.declaration as AnyNode);
  }
  return { get: (name) => found.get(name), opaque, commonJs, esm };
}

export function isEmptyFunction(node: AnyNode): boolean {
  const body = functionBody(node);
  return body?.type === 'BlockStatement' && (body.body as unknown[]).length === 0;
}

export function declaresNoTransaction(config: AnyNode | undefined): boolean {
  if (config?.type !== 'ObjectExpression') return false;
  return config.properties.some(
    (p) =>
      p.type === 'ObjectProperty' &&
      nameOf(p.key) === 'transaction' &&
      p.value.type === 'BooleanLiteral' &&
      !p.value.value,
  );
}
