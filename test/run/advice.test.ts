import { afterEach, describe, expect, it } from 'vitest';
import { sandbox, type Sandbox } from './support.js';

/** What an operator reads when a rollback stops: the estimate must count data, not catalogs. */
let current: Sandbox | undefined;
afterEach(async () => {
  await current?.cleanup();
  current = undefined;
});

describe('the writes a restore of the backup would lose', () => {
  it("count the target's user tables only: an empty database whose run made tables loses nothing", async () => {
    const sb = await sandbox('advice_empty');
    current = sb;
    // Two steps with no down (so the rollback stops), the second failing: DDL only, no row written.
    const rb = await sb.write(
      'rb.yaml',
      `name: empty
steps:
  - id: tables
    sql: { up: "create table a (id int primary key, label text); create table b (id int references a); create index on b (id)" }
  - id: boom
    sql: { up: "select 1/0" }
`,
    );
    const run = await sb.cli(['run', rb]);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(6);
    expect(run.stderr).toContain('which loses at least 0 row write(s) made since it was taken');

    // Rows written into a user table do count.
    await sb.db.query('insert into a select g, null from generate_series(1, 40) g');
    const again = await sb.cli(['rollback', '--yes']);
    expect(again.code, `${again.stdout}\n${again.stderr}`).toBe(6);
    expect(again.stderr).toMatch(/which loses at least (4\d|[5-9]\d|\d{3,}) row write\(s\)/);
  });
});
