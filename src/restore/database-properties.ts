import type pg from 'pg';
import { quoteIdent, quoteLiteral } from '../db.js';
import { errorMessage } from '../errors.js';
import { commentOnDatabase } from '../marked-database.js';
import { restoredComment } from './databases.js';

/**
 * A pg_dump without --create carries no database-level properties: owner,
 * privileges on the database, `ALTER DATABASE ... SET`, locale. When the
 * backup is of the target, they are read from it and copied.
 */
export interface DatabaseRow {
  oid: number;
  owner: string;
  connlimit: number;
  hasAcl: boolean;
  grants: { grantee: string | null; privilege: string; grantable: boolean }[];
  settings: { role: string | null; config: string[] | null }[];
  /** What the server version has of datcollate, datctype, datlocprovider, daticulocale/datlocale. */
  locale: {
    collate?: string;
    ctype?: string;
    provider?: string;
    icu?: string;
    icuRules?: string;
  };
}

export async function readDatabase(
  admin: pg.ClientBase,
  name: string,
): Promise<DatabaseRow | undefined> {
  const res = await admin.query<DatabaseRow>(
    `select d.oid::int as oid, pg_get_userbyid(d.datdba)::text as owner,
            d.datconnlimit as connlimit, d.datacl is not null as "hasAcl",
            (select coalesce(json_agg(json_build_object(
                      'grantee', case when a.grantee = 0 then null
                                      else pg_get_userbyid(a.grantee)::text end,
                      'privilege', a.privilege_type, 'grantable', a.is_grantable)), '[]')
               from aclexplode(d.datacl) a where a.grantee <> d.datdba) as grants,
            (select coalesce(json_agg(json_build_object(
                      'role', case when s.setrole = 0 then null
                                   else pg_get_userbyid(s.setrole)::text end,
                      'config', s.setconfig)), '[]')
               from pg_db_role_setting s where s.setdatabase = d.oid) as settings,
            json_strip_nulls(json_build_object(
              'collate', j->>'datcollate', 'ctype', j->>'datctype',
              'provider', j->>'datlocprovider',
              'icu', coalesce(j->>'daticulocale', j->>'datlocale'),
              'icuRules', j->>'daticurules')) as locale
       from pg_database d, lateral (select to_jsonb(d) as j) x
      where d.datname = $1`,
    [name],
  );
  return res.rows[0];
}

/**
 * After the proof: copy the source's properties, each on its own (one that
 * fails is a warning), in the same transaction that replaces the marker with
 * the plain comment that makes the database the user's. Returns what was copied.
 */
export async function finishRestored(
  admin: pg.ClientBase,
  name: string,
  backupId: string,
  opts: { source: DatabaseRow | undefined; keepOwners: boolean; warn: (m: string) => void },
): Promise<string[]> {
  const statements = opts.source ? propertyStatements(opts.source, name, opts.keepOwners) : [];
  const copied: string[] = [];
  await admin.query('begin');
  try {
    await commentOnDatabase(admin, name, restoredComment(backupId));
    for (const s of statements) {
      await admin.query('savepoint property');
      try {
        await admin.query(s.sql);
        await admin.query('release savepoint property');
        copied.push(s.what);
      } catch (err) {
        await admin.query('rollback to savepoint property');
        opts.warn(`Could not copy ${s.what} from the target: ${errorMessage(err)}`);
      }
    }
    await admin.query('commit');
  } catch (err) {
    await admin.query('rollback').catch(() => undefined);
    throw err;
  }
  return copied;
}

function propertyStatements(
  source: DatabaseRow,
  name: string,
  keepOwners: boolean,
): { what: string; sql: string }[] {
  const db = quoteIdent(name);
  const out: { what: string; sql: string }[] = [];
  if (keepOwners) {
    out.push({
      what: `owner ${source.owner}`,
      sql: `alter database ${db} owner to ${quoteIdent(source.owner)}`,
    });
    if (source.hasAcl) {
      out.push({ what: 'privileges of public', sql: `revoke all on database ${db} from public` });
      for (const g of source.grants) {
        const who = g.grantee === null ? 'public' : quoteIdent(g.grantee);
        out.push({
          what: `${g.privilege} privilege of ${g.grantee ?? 'public'}`,
          sql: `grant ${g.privilege.toLowerCase()} on database ${db} to ${who}${g.grantable ? ' with grant option' : ''}`,
        });
      }
    }
  }
  if (source.connlimit >= 0) {
    out.push({
      what: `connection limit ${source.connlimit}`,
      sql: `alter database ${db} connection limit ${source.connlimit}`,
    });
  }
  for (const s of source.settings) {
    const scope =
      s.role === null
        ? `alter database ${db}`
        : `alter role ${quoteIdent(s.role)} in database ${db}`;
    for (const entry of s.config ?? []) {
      const at = entry.indexOf('=');
      if (at <= 0) continue;
      const [setting, value] = [entry.slice(0, at), entry.slice(at + 1)];
      out.push({
        what: `setting ${setting}${s.role === null ? '' : ` of role ${s.role}`}`,
        sql: `${scope} set ${quoteIdent(setting)} to ${settingValue(setting, value)}`,
      });
    }
  }
  return out;
}

/** The options of CREATE DATABASE that give it the collation and character classes of `like`. */
export function localeClause(like: DatabaseRow): string {
  const l = like.locale;
  if (!l.collate || !l.ctype) return '';
  const opts = [`lc_collate ${quoteLiteral(l.collate)}`, `lc_ctype ${quoteLiteral(l.ctype)}`];
  if (l.provider === 'i' && l.icu) {
    opts.push('locale_provider icu', `icu_locale ${quoteLiteral(l.icu)}`);
    if (l.icuRules) opts.push(`icu_rules ${quoteLiteral(l.icuRules)}`);
  } else if (l.provider === 'b' && l.icu) {
    opts.push('locale_provider builtin', `builtin_locale ${quoteLiteral(l.icu)}`);
  } else if (l.provider === 'c') {
    opts.push('locale_provider libc');
  }
  return opts.join(' ');
}

/** Settings whose stored value is a list of quoted items (as pg_dump's variable_is_guc_list_quote). */
const LIST_SETTINGS = new Set([
  'local_preload_libraries',
  'search_path',
  'session_preload_libraries',
  'shared_preload_libraries',
  'temp_tablespaces',
  'unix_socket_directories',
]);

/** A stored `setconfig` value as the literal(s) `SET setting TO …` takes back. */
export function settingValue(setting: string, value: string): string {
  if (!LIST_SETTINGS.has(setting.toLowerCase())) return quoteLiteral(value);
  const items = splitSettingList(value);
  return items.length > 0 ? items.map(quoteLiteral).join(', ') : "''";
}

/** `"$user", public` → [`$user`, `public`], as PostgreSQL's SplitGUCList reads it. */
export function splitSettingList(text: string): string[] {
  const items: string[] = [];
  let i = 0;
  const skipSpace = (): void => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  skipSpace();
  while (i < text.length) {
    let item = '';
    if (text[i] === '"') {
      for (i++; i < text.length; i++) {
        if (text[i] === '"') {
          if (text[i + 1] !== '"') {
            i++;
            break;
          }
          i++;
        }
        item += text[i];
      }
    } else {
      while (i < text.length && text[i] !== ',') item += text[i++];
      item = item.trim();
    }
    items.push(item);
    skipSpace();
    if (text[i] === ',') i++;
    skipSpace();
  }
  return items;
}
