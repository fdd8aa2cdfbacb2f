import { quoteLiteral } from '../db.js';

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
