import { randomInt } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { compareFingerprints } from '../../src/fingerprint.js';
import { prng, sandbox } from './support.js';

/**
 * Promise 4 as a property: a random runbook (3–7 sql steps, each with a
 * correct down) with one random failing step always ends in exit 5 and the
 * pre-run state, proved by fingerprints the test computes itself.
 *
 * The seed is random each time and printed with every case; reproduce a
 * failure with LIFEBOAT_PROPERTY_SEED=<seed>. LIFEBOAT_PROPERTY_CASES
 * changes how many cases run (default 12).
 */
const BASE_SEED = Number(process.env.LIFEBOAT_PROPERTY_SEED ?? randomInt(1, 2 ** 31));
const CASES = Number(process.env.LIFEBOAT_PROPERTY_CASES ?? 12);

const INIT = `
  create table items (id serial primary key, name text not null, qty int not null);
  insert into items (name, qty) select 'item ' || g, g % 17 from generate_series(1, 100) g;
`;

interface Table {
  name: string;
  /** Columns other than id. */
  cols: string[];
  /** Columns a step may rename (not the base table's own). */
  renamable: string[];
  base: boolean;
  nextId: number;
}

interface Op {
  up: string;
  down: string;
}

interface GenStep {
  id: string;
  sql: { up: string; down: string; verify?: string; transaction?: boolean };
}

type Failure = 'divide-by-zero' | 'duplicate-key' | 'not-null' | 'verify-false' | 'failing-step';

interface Case {
  seed: number;
  steps: GenStep[];
  failing: string;
  failure: Failure;
}

/** One random runbook with one failing step; the same seed gives the same case. */
function generateCase(seed: number): Case {
  const rnd = prng(seed);
  let k = 0;
  const fresh = (prefix: string) => `${prefix}${++k}`;
  const tables: Table[] = [
    { name: 'items', cols: ['name', 'qty'], renamable: [], base: true, nextId: 1000 },
  ];

  const ops: { when: () => boolean; make: () => Op }[] = [
    {
      // create a table, sometimes with rows
      when: () => true,
      make: () => {
        const name = fresh('p_t');
        const rows = rnd.int(0, 30);
        tables.push({ name, cols: ['v'], renamable: ['v'], base: false, nextId: rows + 1 });
        const fill = rows
          ? `;\ninsert into ${name} (id, v) select g, 'v' || g from generate_series(1, ${rows}) g`
          : '';
        return {
          up: `create table ${name} (id int primary key, v text)${fill}`,
          down: `drop table ${name}`,
        };
      },
    },
    {
      // add a column
      when: () => true,
      make: () => {
        const t = rnd.pick(tables);
        const col = fresh('c');
        const type = rnd.pick(['int default 7', 'text', 'boolean default false', 'numeric(10,2)']);
        t.cols.push(col);
        t.renamable.push(col);
        return {
          up: `alter table ${t.name} add column ${col} ${type}`,
          down: `alter table ${t.name} drop column ${col}`,
        };
      },
    },
    {
      // insert rows
      when: () => true,
      make: () => {
        const t = rnd.pick(tables);
        const from = t.nextId;
        const to = from + rnd.int(1, 40);
        t.nextId = to + 1;
        const up = t.base
          ? `insert into items (id, name, qty) select g, 'gen ' || g, g % 5 from generate_series(${from}, ${to}) g`
          : `insert into ${t.name} (id) select g from generate_series(${from}, ${to}) g`;
        return { up, down: `delete from ${t.name} where id between ${from} and ${to}` };
      },
    },
    {
      // an index, sometimes built concurrently (then the step runs outside a transaction)
      when: () => true,
      make: () => {
        const t = rnd.pick(tables);
        const col = rnd.pick(t.cols);
        const ix = fresh('p_ix');
        return rnd.chance(0.4)
          ? {
              up: `create index concurrently ${ix} on ${t.name} (${col})`,
              down: `drop index concurrently if exists ${ix}`,
            }
          : { up: `create index ${ix} on ${t.name} (${col})`, down: `drop index ${ix}` };
      },
    },
    {
      // rename a column
      when: () => tables.some((t) => t.renamable.length > 0),
      make: () => {
        const t = rnd.pick(tables.filter((x) => x.renamable.length > 0));
        const old = rnd.pick(t.renamable);
        const name = fresh('r');
        t.renamable = t.renamable.map((c) => (c === old ? name : c));
        t.cols = t.cols.map((c) => (c === old ? name : c));
        return {
          up: `alter table ${t.name} rename column ${old} to ${name}`,
          down: `alter table ${t.name} rename column ${name} to ${old}`,
        };
      },
    },
    {
      // rename a table
      when: () => tables.some((t) => !t.base),
      make: () => {
        const t = rnd.pick(tables.filter((x) => !x.base));
        const old = t.name;
        t.name = fresh('p_rt');
        return {
          up: `alter table ${old} rename to ${t.name}`,
          down: `alter table ${t.name} rename to ${old}`,
        };
      },
    },
    {
      // change existing rows, reversibly
      when: () => true,
      make: () => {
        const n = rnd.int(2, 5);
        const by = rnd.int(1, 9);
        return {
          up: `update items set qty = qty + ${by} where id % ${n} = 0`,
          down: `update items set qty = qty - ${by} where id % ${n} = 0`,
        };
      },
    },
    {
      // a row through the serial: the sequence moves on and is not undone (allowed)
      when: () => true,
      make: () => {
        const tag = fresh('serial ');
        return {
          up: `insert into items (name, qty) values ('${tag}', 1)`,
          down: `delete from items where name = '${tag}'`,
        };
      },
    },
    {
      // a check constraint
      when: () => true,
      make: () => {
        const t = rnd.pick(tables);
        const ck = fresh('p_ck');
        return {
          up: `alter table ${t.name} add constraint ${ck} check (id > 0)`,
          down: `alter table ${t.name} drop constraint ${ck}`,
        };
      },
    },
    {
      // a view
      when: () => true,
      make: () => {
        const t = rnd.pick(tables);
        const v = fresh('p_v');
        return { up: `create view ${v} as select id from ${t.name}`, down: `drop view ${v}` };
      },
    },
  ];

  const count = rnd.int(3, 7);
  const steps: GenStep[] = [];
  for (let i = 0; i < count; i++) {
    const parts: Op[] = [];
    const n = rnd.chance(0.3) ? 2 : 1;
    for (let j = 0; j < n; j++) parts.push(rnd.pick(ops.filter((o) => o.when())).make());
    const sql: GenStep['sql'] = {
      up: parts.map((p) => p.up).join(';\n'),
      // The down undoes the parts newest first.
      down: [...parts]
        .reverse()
        .map((p) => p.down)
        .join(';\n'),
    };
    if (!/concurrently/.test(sql.up) && rnd.chance(0.15)) sql.transaction = false;
    steps.push({ id: `step-${i + 1}`, sql });
  }

  const failure = rnd.pick<Failure>([
    'divide-by-zero',
    'duplicate-key',
    'not-null',
    'verify-false',
    'failing-step',
  ]);
  if (failure === 'failing-step') {
    const at = rnd.int(0, steps.length);
    steps.splice(at, 0, {
      id: 'fails',
      sql: { up: `insert into items (id, name, qty) values (1, 'duplicate', 0)`, down: 'select 1' },
    });
    return { seed, steps, failing: 'fails', failure };
  }
  // The failure comes after the step's own work, so that a step outside a
  // transaction has done all of it and its down applies in full.
  const victim = rnd.pick(steps);
  if (failure === 'verify-false') victim.sql.verify = 'select false';
  else {
    victim.sql.up += {
      'divide-by-zero': ';\nselect 1/0',
      'duplicate-key': `;\ninsert into items (id, name, qty) values (1, 'duplicate', 0)`,
      'not-null': `;\ninsert into items (id, name, qty) values (999999, null, 0)`,
    }[failure];
  }
  return { seed, steps, failing: victim.id, failure };
}

interface RolledBack {
  error: { kind: string };
  result: {
    failure: { stepId: string };
    steps: { id: string; outcome: string }[];
    rollback: { complete: boolean; proof?: { equal: boolean } };
  };
}

describe(`random runbooks with a random failing step end in the pre-run state (LIFEBOAT_PROPERTY_SEED=${BASE_SEED})`, () => {
  for (let i = 0; i < CASES; i++) {
    const seed = BASE_SEED + i;
    it(`case ${i + 1}, seed ${seed}`, async () => {
      const c = generateCase(seed);
      const yaml = stringify({ name: `prop-${seed}`, steps: c.steps });
      const why = `seed ${seed} (reproduce: LIFEBOAT_PROPERTY_SEED=${seed} LIFEBOAT_PROPERTY_CASES=1); failing ${c.failing} by ${c.failure}; runbook:\n${yaml}`;
      const sb = await sandbox('prop', INIT);
      try {
        const rb = await sb.write('random.yaml', yaml);
        const before = await sb.fingerprint();
        const r = await sb.json(['run', rb]);
        expect(r.code, `${why}\n${r.stderr}`).toBe(5);
        const doc = r.doc as unknown as RolledBack;
        expect(doc.error.kind, why).toBe('rolled-back');
        expect(doc.result.failure.stepId, why).toBe(c.failing);
        expect(doc.result.rollback.complete, why).toBe(true);
        expect(doc.result.rollback.proof?.equal, why).toBe(true);

        // Steps before the failing one were undone, the ones after it never ran.
        const at = c.steps.findIndex((s) => s.id === c.failing);
        const expected = c.steps.map((s, j) => [
          s.id,
          j < at ? 'undone' : j === at ? 'failed' : 'not-run',
        ]);
        expect(
          doc.result.steps.map((s) => [s.id, s.outcome]),
          why,
        ).toEqual(expected);

        // The test's own proof, not lifeboat's.
        expect(compareFingerprints(before, await sb.fingerprint()), why).toEqual([]);
      } finally {
        await sb.cleanup();
      }
    });
  }
});
