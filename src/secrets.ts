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

export function redact(text: string): string {
  let out = text.replace(/(postgres(?:ql)?:\/\/[^:/@\s]*:)[^@\s]*@/gi, '$1***@');
  for (const secret of known) out = out.split(secret).join('***');
  return out;
}
