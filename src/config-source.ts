import { LineCounter, parseDocument } from 'yaml';
import type { ConfigLocator } from './config-problems.js';
import { ConfigError } from './errors.js';
import { YamlLocator } from './runbook/yaml-locations.js';

/**
 * A JSON or YAML config file read as text, so that every problem can name its
 * line and column. JSON is read by the YAML parser too (JSON is YAML), which
 * knows where each value is; a duplicate key is a problem, not a silent win.
 */
export function parseConfigText(
  file: string,
  text: string,
): { raw: unknown; locate: ConfigLocator } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locator = new YamlLocator(text, doc, lines, file);
  const errors = [...doc.errors, ...doc.warnings];
  if (errors.length > 0) {
    throw new ConfigError(`Cannot read ${file}: it is not valid ${syntaxOf(file)}.`, {
      details: errors.map((e) => {
        const at = locator.at(e.pos[0]);
        return `${file}:${at.line}:${at.column}: ${e.message.split('\n')[0]}`;
      }),
    });
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    throw new ConfigError(`Cannot read ${file}: ${String(cause)}`, { cause });
  }
  return {
    raw,
    locate: (path, atKey) => {
      const at = locator.locate(path, atKey);
      return { line: at.line, column: at.column };
    },
  };
}

function syntaxOf(file: string): string {
  return file.endsWith('.json') ? 'JSON' : 'YAML';
}

/** Config files whose text can be located (the others are code). */
export function isTextConfig(file: string): boolean {
  return /\.(json|ya?ml)$/.test(file);
}
