import type { Target } from '../target.js';

/** `postgresql://user@host:port/db`, never with the password. */
export function connectionString(target: Target): string {
  const params = new URLSearchParams();
  let authority: string;
  if (target.host.startsWith('/')) {
    authority = '';
    params.set('host', target.host);
    params.set('port', String(target.port));
  } else {
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    authority = `${host}:${target.port}`;
  }
  if (target.sslmode) params.set('sslmode', target.sslmode);
  const query = params.size > 0 ? `?${params.toString()}` : '';
  return `postgresql://${encodeURIComponent(target.user)}@${authority}/${encodeURIComponent(target.database)}${query}`;
}
