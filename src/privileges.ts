import type pg from 'pg';
import { quoteIdent } from './db.js';
import { PrivilegeError } from './errors.js';
import { qualifiedName } from './fingerprint.js';

/**
 * The rights each of lifeboat's jobs needs in a database, read from the
 * catalog (never by trying), and for each right missing the statement that
 * gives it. A superuser has them all.
 *
 *   read      backup, fingerprints: USAGE on every schema, SELECT on every table and sequence
 *   journal   run, rollback: CREATE on the database (the journal's schema)
 *   createdb  verify, rehearse, restore: create databases on the server (CREATEDB)
 *   freeze    run --freeze: a superuser (it tags the database and ends other roles' sessions)
 *   swap      restore --swap: own the target database (renaming it), and CREATEDB
 *   owners    restore keeping owners and privileges: a superuser (else --no-owner)
 */
export type Need = 'read' | 'journal' | 'createdb' | 'freeze' | 'swap' | 'owners';

export interface PrivilegeGap {
  need: Need;
  /** What is missing, in a few words. */
  missing: string;
  /** The statement (or flag) that fixes it. */
  fix: string;
}

interface RoleFacts {
  role: string;
  database: string;
  superuser: boolean;
  createdb: boolean;
  createOnDatabase: boolean;
  ownsDatabase: boolean;
}

/**
 * Every gap for `needs` in the database `client` is connected to (or, for the
 * database-level needs, in `database` on the same server). Reads only.
 */
export async function readPrivilegeGaps(
  client: pg.ClientBase,
  needs: readonly Need[],
  database?: string,
): Promise<PrivilegeGap[]> {
  const facts = await roleFacts(client, database);
  if (facts.superuser) return [];
  const unreadable = needs.includes('read') ? await unreadableObjects(client) : [];
  return privilegeGaps(facts, unreadable, needs);
}

/** Throws PrivilegeError (exit 2) naming every gap and its fix; changes nothing. */
export async function requirePrivileges(
  client: pg.ClientBase,
  needs: readonly Need[],
  forWhat: string,
): Promise<void> {
  const gaps = await readPrivilegeGaps(client, needs);
  if (gaps.length > 0) throw privilegeError(gaps, forWhat);
}

/** `forWhat` starts the sentence: "A backup", "A scratch database", "A run". */
export function privilegeError(gaps: readonly PrivilegeGap[], forWhat: string): PrivilegeError {
  return new PrivilegeError(
    `${forWhat} needs ${gaps.length === 1 ? 'a privilege' : 'privileges'} the role lacks; nothing was changed. As the owner of the objects (or a superuser), grant:`,
    { details: gaps.map((g) => `${g.missing}: ${g.fix}`), data: { gaps } },
  );
}

interface Unreadable {
  kind: 'schema' | 'table' | 'sequence';
  schema: string;
  name: string;
}

/** Pure: the facts about the role and what it cannot read → the gaps and their fixes. */
export function privilegeGaps(
  facts: RoleFacts,
  unreadable: readonly Unreadable[],
  needs: readonly Need[],
): PrivilegeGap[] {
  if (facts.superuser) return [];
  const role = quoteIdent(facts.role);
  const db = quoteIdent(facts.database);
  const gaps: PrivilegeGap[] = [];
  if (needs.includes('read')) {
    for (const schema of [...new Set(unreadable.map((u) => u.schema))]) {
      const here = unreadable.filter((u) => u.schema === schema);
      const s = quoteIdent(schema);
      const names = (kind: Unreadable['kind']): string[] =>
        here.filter((u) => u.kind === kind).map((u) => qualifiedName(schema, u.name));
      const statements = [
        ...(here.some((u) => u.kind === 'schema')
          ? [`GRANT USAGE ON SCHEMA ${s} TO ${role};`]
          : []),
        ...(names('table').length > 0
          ? [`GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${role};`]
          : []),
        ...(names('sequence').length > 0
          ? [`GRANT SELECT ON ALL SEQUENCES IN SCHEMA ${s} TO ${role};`]
          : []),
      ];
      const listed = [...names('table'), ...names('sequence')];
      gaps.push({
        need: 'read',
        missing: here.some((u) => u.kind === 'schema')
          ? `no USAGE on schema ${s}`
          : `no SELECT on ${listed.slice(0, 3).join(', ')}${listed.length > 3 ? `, and ${listed.length - 3} more` : ''}`,
        fix: `${statements.join(' ')} (or, for everything at once: GRANT pg_read_all_data TO ${role};)`,
      });
    }
  }
  if (needs.includes('journal') && !facts.createOnDatabase) {
    gaps.push({
      need: 'journal',
      missing: `no CREATE on database ${db} (for lifeboat's journal, schema lifeboat_journal)`,
      fix: `GRANT CREATE ON DATABASE ${db} TO ${role};`,
    });
  }
  if ((needs.includes('createdb') || needs.includes('swap')) && !facts.createdb) {
    gaps.push({
      ...createdbGap(facts.role),
      need: needs.includes('createdb') ? 'createdb' : 'swap',
    });
  }
  if (needs.includes('swap') && !facts.ownsDatabase) {
    gaps.push({
      need: 'swap',
      missing: `role ${role} does not own database ${db}, so it may not rename it (restore --swap)`,
      fix: `ALTER DATABASE ${db} OWNER TO ${role};`,
    });
  }
  if (needs.includes('freeze')) {
    gaps.push({
      need: 'freeze',
      missing: `role ${role} is not a superuser (run --freeze tags the database and ends other roles' sessions)`,
      fix: 'run --freeze as a superuser, or run without --freeze',
    });
  }
  if (needs.includes('owners')) {
    gaps.push({
      need: 'owners',
      missing: `role ${role} is not a superuser, so a restore cannot give objects back to their owners`,
      fix: 'restore with --no-owner, or as a superuser',
    });
  }
  return gaps;
}

/** CREATEDB missing: what verify, rehearse and restore say when CREATE DATABASE is refused. */
export function createdbGap(roleName: string): PrivilegeGap {
  const role = quoteIdent(roleName);
  return {
    need: 'createdb',
    missing: `role ${role} may not create databases (verification, rehearsal and restore create one)`,
    fix: `ALTER ROLE ${role} CREATEDB; (or set scratchUrl to a server where it may)`,
  };
}

async function roleFacts(client: pg.ClientBase, database?: string): Promise<RoleFacts> {
  const res = await client.query<RoleFacts>(
    `select current_user as role, d.datname as database,
            r.rolsuper as superuser, r.rolcreatedb or r.rolsuper as createdb,
            has_database_privilege(d.oid, 'CREATE') as "createOnDatabase",
            pg_has_role(d.datdba, 'USAGE') as "ownsDatabase"
       from pg_roles r, pg_database d
      where r.rolname = current_user and d.datname = coalesce($1, current_database())`,
    [database ?? null],
  );
  return res.rows[0]!;
}

/**
 * What a backup must read and cannot: schemas without USAGE, tables and
 * sequences without SELECT. Objects an extension owns are left out, as
 * pg_dump and the fingerprints leave them out.
 */
async function unreadableObjects(client: pg.ClientBase): Promise<Unreadable[]> {
  const res = await client.query<Unreadable>(
    `with ext as (select objid from pg_depend where deptype = 'e' and classid = 'pg_class'::regclass),
          ns as (select oid, nspname from pg_namespace
                  where nspname !~ '^pg_' and nspname <> 'information_schema')
     select 'schema' as kind, nspname as schema, nspname as name
       from ns where not has_schema_privilege(ns.oid, 'USAGE')
     union all
     select case c.relkind when 'S' then 'sequence' else 'table' end, ns.nspname, c.relname
       from pg_class c join ns on ns.oid = c.relnamespace
      where c.relkind in ('r', 'p', 'm', 'S') and c.relpersistence <> 't'
        and c.oid not in (select objid from ext)
        and not case c.relkind when 'S' then has_sequence_privilege(c.oid, 'SELECT')
                               else has_table_privilege(c.oid, 'SELECT') end
      order by 2, 1, 3`,
  );
  return res.rows;
}
