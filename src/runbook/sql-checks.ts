import type { Location, Problem, Risk, TextOrigin } from './types.js';
import { analyzeSql, type SqlAnalysis, type SqlFinding } from './sql-analysis.js';

/** Where a finding in a text sits in its file. */
export function locateInText(
  origin: TextOrigin,
  finding: { line: number; column: number },
): Location {
  if (!origin.linesMatch) return { file: origin.file, line: origin.line, column: origin.column };
  return {
    file: origin.file,
    line: origin.line + finding.line - 1,
    // Literal blocks indent every line alike; files start at column 1.
    column: origin.column + finding.column - 1,
  };
}

function problemAt(origin: TextOrigin, finding: SqlFinding, message: string): Problem {
  return { ...locateInText(origin, finding), message };
}

export interface CheckedScript {
  transaction: boolean;
  problems: Problem[];
  analysis: SqlAnalysis;
}

/**
 * Validate an `up` or `down` script and decide whether it runs in a
 * transaction: as declared, else in one unless a statement cannot be. Saying
 * `transaction: true` over a statement PostgreSQL refuses in a transaction is
 * a problem now rather than a failed step later.
 */
export function checkSqlScript(
  role: 'up' | 'down',
  text: string,
  origin: TextOrigin,
  declared: boolean | undefined,
): CheckedScript {
  const analysis = analyzeSql(text);
  const problems = basicProblems(role, analysis, origin);
  const transaction = declared ?? analysis.nonTransactional.length === 0;
  if (declared === true) {
    for (const f of analysis.nonTransactional) {
      problems.push(
        problemAt(
          origin,
          f,
          `${role}: ${f.message}; remove "transaction: true" to run this step outside a transaction`,
        ),
      );
    }
  }
  if (transaction) {
    for (const f of analysis.transactionControl) {
      problems.push(
        problemAt(
          origin,
          f,
          `${role}: ${f.message}; remove it: lifeboat runs the step in its own transaction and commits it with its checkpoint`,
        ),
      );
    }
  }
  return { transaction, problems, analysis };
}

/** A `verify` or `check` query: exactly one statement that can run in a transaction. */
export function checkQuery(role: 'verify' | 'check', text: string, origin: TextOrigin): Problem[] {
  const analysis = analyzeSql(text);
  const problems = basicProblems(role, analysis, origin);
  if (analysis.statementCount > 1) {
    problems.push({
      ...locateInText(origin, { line: 1, column: 1 }),
      message: `${role} must be one query returning one boolean, found ${analysis.statementCount} statements`,
    });
  }
  for (const f of [...analysis.nonTransactional, ...analysis.transactionControl]) {
    problems.push(problemAt(origin, f, `${role}: ${f.message}; a ${role} query only reads`));
  }
  return problems;
}

function basicProblems(role: string, analysis: SqlAnalysis, origin: TextOrigin): Problem[] {
  const problems: Problem[] = [];
  if (analysis.unterminated !== undefined) {
    problems.push(
      problemAt(origin, analysis.unterminated, `${role}: ${analysis.unterminated.message}`),
    );
  } else if (analysis.statementCount === 0) {
    problems.push({
      ...locateInText(origin, { line: 1, column: 1 }),
      message: `${role} has no SQL statement`,
    });
  }
  return problems;
}

/** The risks an analysis found, located in their file. */
export function risksOf(analysis: SqlAnalysis, origin: TextOrigin): Risk[] {
  return analysis.risks.map((r) => {
    const at = locateInText(origin, r);
    return { code: r.code, message: r.message, where: `${at.file}:${at.line}` };
  });
}
