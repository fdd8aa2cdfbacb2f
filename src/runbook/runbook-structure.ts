import { STEP_KINDS } from './schema.js';

/** A problem found on the raw YAML data, located by its path in the document. */
export interface PathIssue {
  path: (string | number)[];
  message: string;
  /** Point at the key rather than its value (unknown or conflicting keys). */
  atKey?: boolean;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Rules that relate several keys. They run on the raw data, whatever zod
 * thinks of the shapes, so one bad value does not hide a duplicate id
 * elsewhere: every problem is reported at once.
 */
export function structureIssues(raw: unknown): PathIssue[] {
  if (!isObject(raw) || !Array.isArray(raw.steps)) return [];
  const issues: PathIssue[] = [];
  const firstIndexOfId = new Map<string, number>();
  raw.steps.forEach((step: unknown, index) => {
    if (!isObject(step)) return;
    const at = ['steps', index];
    if (typeof step.id === 'string') {
      const first = firstIndexOfId.get(step.id);
      if (first === undefined) firstIndexOfId.set(step.id, index);
      else {
        issues.push({
          path: [...at, 'id'],
          message: `duplicate step id "${step.id}" (steps[${first}] has it too); ids must be unique`,
        });
      }
    }
    const kinds = STEP_KINDS.filter((kind) => kind in step);
    const [first, second] = kinds;
    if (first === undefined) {
      issues.push({
        path: at,
        message: `a step needs one kind: ${STEP_KINDS.join(', ')}`,
      });
    } else if (second !== undefined) {
      issues.push({
        path: [...at, second],
        atKey: true,
        message: `a step has one kind, this one has ${kinds.join(' and ')}; split it into ${kinds.length} steps`,
      });
    }
    if (isObject(step.sql)) issues.push(...sqlIssues(step.sql, [...at, 'sql']));
  });
  return issues;
}

function sqlIssues(sql: Record<string, unknown>, at: (string | number)[]): PathIssue[] {
  const issues: PathIssue[] = [];
  if ('up' in sql && 'upFile' in sql) {
    issues.push({ path: [...at, 'upFile'], atKey: true, message: 'give up or upFile, not both' });
  } else if (!('up' in sql) && !('upFile' in sql)) {
    issues.push({
      path: at,
      message: 'sql needs up (inline SQL) or upFile (a file beside the runbook)',
    });
  }
  if ('down' in sql && 'downFile' in sql) {
    issues.push({
      path: [...at, 'downFile'],
      atKey: true,
      message: 'give down or downFile, not both',
    });
  }
  return issues;
}
