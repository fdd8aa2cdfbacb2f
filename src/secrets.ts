import { readFileSync } from 'node:fs';

/**
 * Passwords must never reach output, logs, reports, manifests or errors.
 * Every secret lifeboat learns is registered here, and every text that leaves
 * the process passes through `redact`.
 */
const known = new Set<string>();

export function registerSecret(secret: string | undefined): void {
  // Very short strings would redact ordinary words; a password that short is not protected by hiding it.
  if (secret && secret.length >= 3) known.add(secret);
}

/**
 * lifeboat's own secrets from its environment: the signing key, age
 * identities (the key itself and the content of the file named), the
 * restore role's password, cloud credentials and the target's PGPASSWORD.
 */
export const SECRET_VARIABLES = [
  'LIFEBOAT_SIGNING_KEY',
  'LIFEBOAT_AGE_IDENTITY',
  'LIFEBOAT_AGE_IDENTITY_FILE',
  'LIFEBOAT_RESTORE_PASSWORD',
];

/** Variables a step does not get unless it names them (see src/step-env.ts). */
export function isSecretVariable(name: string): boolean {
  return SECRET_VARIABLES.includes(name) || name.startsWith('AWS_');
}

export function registerEnvironmentSecrets(env: NodeJS.ProcessEnv): void {
  for (const name of ['LIFEBOAT_SIGNING_KEY', 'LIFEBOAT_RESTORE_PASSWORD', 'PGPASSWORD'])
    registerSecret(env[name]);
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
    registerSecret(env[name]);
  for (const line of (env.LIFEBOAT_AGE_IDENTITY ?? '').split('\n')) registerSecret(line.trim());
  if (env.LIFEBOAT_AGE_IDENTITY_FILE) {
    let text = '';
    try {
      text = readFileSync(env.LIFEBOAT_AGE_IDENTITY_FILE, 'utf8');
    } catch {
      // Unreadable: the command that needs it says so.
    }
    for (const line of text.split('\n'))
      if (line.trim() && !line.startsWith('#')) registerSecret(line.trim());
  }
}

export function redact(text: string): string {
  let out = text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
  // libpq key=value text: password='...' or password=word.
  out = out.replace(/(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s'&]+)/gi, '$1***');
  for (const secret of known) out = out.split(secret).join('***');
  return out;
}
