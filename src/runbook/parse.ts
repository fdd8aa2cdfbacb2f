import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import type { ParsedRunbook, ParsedStep, Problem } from './types.js';
import { KNOWN_KEYS, runbookSpec, stepSpec } from './schema.js';
import { buildParsedRunbook, buildParsedStep } from './parsed-runbook.js';
import { structureIssues, type PathIssue } from './runbook-structure.js';
import { YamlLocator } from './yaml-locations.js';
import { checkQuery, checkSqlScript } from './sql-checks.js';
import { closestWord } from './closest-word.js';

export interface ParseResult {
  runbook?: ParsedRunbook;
  problems: Problem[];
}

/**
 * Parse and validate a runbook's text. Pure: file references are checked as
 * paths only; loadRunbook reads them. Every problem is reported, each with
 * its line, sorted by position.
 */
export function parseRunbook(text: string, file: string): ParseResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locator = new YamlLocator(text, doc, lines, file);
  const yamlProblems = [...doc.errors, ...doc.warnings].map((e): Problem => ({
    ...locator.at(e.pos[0]),
    message: `YAML: ${e.message}`,
  }));
  if (yamlProblems.length > 0) return { problems: sorted(yamlProblems) };

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // yaml refuses alias bombs ("billion laughs") here rather than expanding them.
    const message = err instanceof Error ? err.message : String(err);
    return { problems: [{ file, line: 1, column: 1, message: `YAML: ${message}` }] };
  }
  const parsed = runbookSpec.safeParse(raw);
  const issues = [
    ...(parsed.success ? [] : zodIssues(parsed.error.issues, locator)),
    ...structureIssues(raw),
  ];
  const problems = issues.map((i): Problem => ({
    ...locator.locate(i.path, i.atKey),
    message: i.message,
  }));
  if (!parsed.success || problems.length > 0) {
    // Still check the SQL of every step that is well-formed on its own.
    problems.push(...wellFormedSteps(raw, locator).flatMap(inlineSqlProblems));
    return { problems: sorted(problems) };
  }
  const runbook = buildParsedRunbook(parsed.data, file, locator);
  problems.push(...runbook.steps.flatMap(inlineSqlProblems));
  return problems.length > 0 ? { problems: sorted(problems) } : { runbook, problems };
}

function wellFormedSteps(raw: unknown, locator: YamlLocator): ParsedStep[] {
  const steps: unknown = (raw as { steps?: unknown } | null)?.steps;
  if (!Array.isArray(steps)) return [];
  return steps.flatMap((item: unknown, index) => {
    const step = stepSpec.safeParse(item);
    if (!step.success || structureIssues({ steps: [item] }).length > 0) return [];
    return [buildParsedStep(step.data, ['steps', index], locator)];
  });
}

function sorted(problems: Problem[]): Problem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

function label(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, seg) => {
    if (typeof seg === 'number') return `${acc}[${seg}]`;
    return acc === '' ? String(seg) : `${acc}.${String(seg)}`;
  }, '');
}

function zodIssues(issues: z.core.$ZodIssue[], locator: YamlLocator): PathIssue[] {
  return issues.flatMap((issue): PathIssue[] => {
    const path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => {
        const hint = closestWord(key, KNOWN_KEYS);
        const suggestion = hint === undefined ? '' : `; did you mean "${hint}"?`;
        const where = path.length === 0 ? '' : ` in ${label(path)}`;
        return {
          path: [...path, key],
          atKey: true,
          message: `unknown key "${key}"${where}${suggestion}`,
        };
      });
    }
    if (issue.code === 'invalid_type' && path.length > 0 && !locator.has(path)) {
      const key = path[path.length - 1];
      const parent = path.slice(0, -1);
      const where = parent.length === 0 ? '' : ` in ${label(parent)}`;
      return [{ path: parent, message: `missing required key "${String(key)}"${where}` }];
    }
    if (path.length === 0 && issue.code === 'invalid_type') {
      return [{ path, message: 'a runbook is a YAML mapping with at least name and steps' }];
    }
    return [{ path, message: `${label(path)}: ${issue.message}` }];
  });
}

/** Problems in SQL written inside the runbook; SQL in files is checked when loaded. */
function inlineSqlProblems(step: ParsedStep): Problem[] {
  switch (step.kind) {
    case 'sql': {
      const problems: Problem[] = [];
      for (const [role, source] of [
        ['up', step.up],
        ['down', step.down],
      ] as const) {
        if (source?.from === 'inline') {
          problems.push(
            ...checkSqlScript(role, source.text, source.origin, step.transaction).problems,
          );
        }
      }
      if (step.verify) problems.push(...checkQuery('verify', step.verify.text, step.verify.origin));
      return problems;
    }
    case 'check':
      return checkQuery('check', step.query.text, step.query.origin);
    case 'shell':
      return step.verify ? checkQuery('verify', step.verify.text, step.verify.origin) : [];
    case 'knex':
      return [...step.verify.values()].flatMap((v) => checkQuery('verify', v.text, v.origin));
  }
}
