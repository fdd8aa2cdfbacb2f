import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { parseRunbook } from '../../src/runbook/parse.js';
import type { Problem } from '../../src/runbook/types.js';

const FILE = 'rb.yaml';

function problemsOf(text: string): Problem[] {
  const result = parseRunbook(text, FILE);
  expect(result.runbook).toBeUndefined();
  return result.problems;
}

/** Problems as `line: message` so a test names both what and where. */
function where(problems: Problem[]): string[] {
  return problems.map((p) => `${p.line}: ${p.message}`);
}

describe('valid runbooks', () => {
  test.each(['runbooks/examples/add-order-status.yaml', 'runbooks/examples/with-knex.yaml'])(
    '%s parses without problems',
    (file) => {
      const result = parseRunbook(readFileSync(file, 'utf8'), file);
      expect(result.problems).toEqual([]);
      expect(result.runbook?.steps.length).toBeGreaterThan(0);
    },
  );

  test('durations, defaults and kinds become typed values', () => {
    const { runbook, problems } = parseRunbook(
      `name: demo
policy: { maxAge: 24h, copies: 2 }
defaults: { lockTimeout: 5s, statementTimeout: 15m }
steps:
  - id: a
    lockTimeout: 2s
    sql: { up: SELECT 1, down: SELECT 2 }
  - id: b
    shell: { up: "true", timeout: 90s }
  - id: c
    knex: { directory: migrations }
`,
      FILE,
    );
    expect(problems).toEqual([]);
    expect(runbook?.policy).toEqual({ maxAgeMs: 86_400_000, copies: 2 });
    expect(runbook?.defaults).toEqual({ lockTimeoutMs: 5000, statementTimeoutMs: 900_000 });
    const [a, b, c] = runbook?.steps ?? [];
    expect(a).toMatchObject({ kind: 'sql', id: 'a', timeouts: { lockTimeoutMs: 2000 } });
    expect(a?.at.line).toBe(5);
    expect(b).toMatchObject({ kind: 'shell', timeoutMs: 90_000 });
    expect(c).toMatchObject({
      kind: 'knex',
      directory: 'migrations',
      tableName: 'knex_migrations',
      loadExtensions: expect.arrayContaining(['.js', '.cjs', '.ts']) as unknown,
    });
  });

  test('inline SQL remembers where it starts, so problems in it name their own line', () => {
    const { runbook } = parseRunbook(
      `name: demo
steps:
  - id: a
    sql:
      up: |
        SELECT 1;
        SELECT 2;
`,
      FILE,
    );
    const step = runbook?.steps[0];
    expect(step?.kind === 'sql' && step.up).toMatchObject({
      from: 'inline',
      origin: { line: 6, column: 9, linesMatch: true },
    });
  });
});

describe('problems, each with its line', () => {
  test('a YAML syntax error', () => {
    const [first] = problemsOf('name: demo\nsteps: [\n  - id: a\n');
    expect(first).toMatchObject({ line: 3, column: 3 });
    expect(first?.message).toMatch(/^YAML: /);
    const [problem] = problemsOf('name: demo\nname: again\nsteps: []\n');
    expect(problem).toMatchObject({
      line: 2,
      message: expect.stringContaining('unique') as unknown,
    });
  });

  test('a document that is not a mapping', () => {
    expect(where(problemsOf('- just\n- a list\n'))).toEqual([
      '1: a runbook is a YAML mapping with at least name and steps',
    ]);
  });

  test('missing required keys point at their parent', () => {
    expect(where(problemsOf('steps:\n  - sql: { up: SELECT 1 }\n'))).toEqual([
      '1: missing required key "name"',
      '2: missing required key "id" in steps[0]',
    ]);
  });

  test('an unknown key, with a suggestion', () => {
    const problems = problemsOf(`name: demo
steps:
  - id: a
    lockTimout: 5s
    sql: { up: SELECT 1, bogus: 1 }
`);
    expect(where(problems)).toEqual([
      '4: unknown key "lockTimout" in steps[0]; did you mean "lockTimeout"?',
      '5: unknown key "bogus" in steps[0].sql',
    ]);
    expect(problems[0]?.column).toBe(5);
  });

  test('duplicate step ids', () => {
    const problems = problemsOf(`name: demo
steps:
  - id: a
    sql: { up: SELECT 1 }
  - id: a
    sql: { up: SELECT 2 }
`);
    expect(where(problems)).toEqual([
      '5: duplicate step id "a" (steps[0] has it too); ids must be unique',
    ]);
  });

  test('a step with no kind, and one with two', () => {
    const problems = problemsOf(`name: demo
steps:
  - id: none
  - id: two
    sql: { up: SELECT 1 }
    shell: { up: "true" }
`);
    expect(where(problems)).toEqual([
      '3: a step needs one kind: sql, check, knex, shell',
      '6: a step has one kind, this one has sql and shell; split it into 2 steps',
    ]);
  });

  test('up and upFile together, and neither', () => {
    const problems = problemsOf(`name: demo
steps:
  - id: both
    sql:
      up: SELECT 1
      upFile: a.sql
  - id: neither
    sql: { down: SELECT 1 }
`);
    expect(where(problems)).toEqual([
      '6: give up or upFile, not both',
      '8: sql needs up (inline SQL) or upFile (a file beside the runbook)',
    ]);
  });

  test.each([
    ['5', 'write a duration with its unit'],
    ['"30"', 'write a duration with its unit'],
    ['5 fortnights', 'unknown duration unit'],
    ['0s', 'longer than zero'],
    ['30d', 'at most 24d'],
  ])('a bad duration: %s', (value, message) => {
    const [problem] = problemsOf(`name: demo
defaults:
  lockTimeout: ${value}
steps:
  - id: a
    sql: { up: SELECT 1 }
`);
    expect(problem).toMatchObject({ line: 3, column: 16 });
    expect(problem?.message).toContain(message);
  });

  test.each([
    ['../x.sql', 'leaves the runbook'],
    ['sql/../../x.sql', 'leaves the runbook'],
    ['/etc/passwd', 'is absolute'],
    ['C:\\\\Windows\\\\x.sql', 'is absolute'],
  ])('a file reference that escapes: %s', (reference, message) => {
    const [problem] = problemsOf(`name: demo
steps:
  - id: a
    sql:
      upFile: "${reference}"
`);
    expect(problem).toMatchObject({
      line: 5,
      message: expect.stringContaining(message) as unknown,
    });
  });

  test('a knex directory outside the runbook', () => {
    const [problem] = problemsOf(`name: demo
steps:
  - id: app
    knex: { directory: .. }
`);
    expect(problem).toMatchObject({
      line: 4,
      message: expect.stringContaining('leaves') as unknown,
    });
  });

  test('transaction: true over a statement that cannot run in a transaction, at its own line', () => {
    const problems = problemsOf(`name: demo
steps:
  - id: index
    sql:
      transaction: true
      up: |
        -- CREATE INDEX CONCURRENTLY in a comment does not count
        SET lock_timeout = '1s';
        CREATE INDEX CONCURRENTLY orders_status ON orders (status);
`);
    expect(problems).toEqual([
      {
        file: FILE,
        line: 9,
        column: 9,
        message:
          'up: CREATE INDEX CONCURRENTLY cannot run inside a transaction block; remove "transaction: true" to run this step outside a transaction',
      },
    ]);
  });

  test('transaction control, an empty up, a multi-statement verify, an unterminated string', () => {
    const problems = problemsOf(`name: demo
steps:
  - id: a
    sql:
      up: BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT
      verify: SELECT true; SELECT false
  - id: b
    sql: { up: "  -- only a comment" }
  - id: c
    check: { query: "SELECT 'oops" }
`);
    expect(where(problems)).toEqual([
      '5: up: BEGIN controls the transaction; remove it: lifeboat runs the step in its own transaction and commits it with its checkpoint',
      '5: up: COMMIT controls the transaction; remove it: lifeboat runs the step in its own transaction and commits it with its checkpoint',
      '6: verify must be one query returning one boolean, found 2 statements',
      '8: up has no SQL statement',
      '10: check: unterminated string',
    ]);
  });

  test('every problem is reported at once, in file order', () => {
    const problems = problemsOf(`name: Bad Name
policy: { copies: 0 }
steps:
  - id: a
    sql: { up: VACUUM orders, transaction: true }
  - id: a
    shell: { up: "", timeout: forever }
  - id: c
    knex: { directory: /srv/migrations }
`);
    expect(where(problems)).toEqual([
      '1: name: use a-z, 0-9, "-" and "_", starting with a letter or digit',
      '2: policy.copies: at least 1',
      '5: up: VACUUM cannot run inside a transaction block; remove "transaction: true" to run this step outside a transaction',
      '6: duplicate step id "a" (steps[0] has it too); ids must be unique',
      '7: steps[1].shell.up: must not be empty',
      '7: steps[1].shell.timeout: write a duration with its unit, like 90s, 15m, 1h or 7d (got "forever")',
      "9: steps[2].knex.directory: /srv/migrations is absolute; give a path relative to the runbook's directory",
    ]);
  });
});

test('an alias bomb is a problem, not a hang', () => {
  const laughs = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
  for (const [i, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
    const prev = String.fromCharCode('a'.charCodeAt(0) + i);
    laughs.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
  }
  const [problem] = parseRunbook(`${laughs.join('\n')}\nname: x\nsteps: *i\n`, FILE).problems;
  expect(problem?.message).toMatch(/^YAML: .*alias/i);
});
