import { readFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { BadInputError, ConfigError } from '../errors.js';

/**
 * Encryption at rest in the age format (age-encryption.org/v1), so any copy
 * can be decrypted with the standard `age` tool: `age -d -i key.txt`.
 * Streams chunk by chunk; nothing is held whole.
 */
export const AGE_SUFFIX = '.age';

const RECIPIENT = /^age1[0-9a-z]+$/;
const IDENTITY = /^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/;

export function isRecipient(s: string): boolean {
  return RECIPIENT.test(s);
}

/** Recipients from a file in age's own format: one per line, `#` comments. */
export async function readRecipientsFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`Cannot read the recipients file ${file}: ${(err as Error).message}`);
  }
  return keyLines(text);
}

function keyLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
}

/**
 * Decryption keys: LIFEBOAT_AGE_IDENTITY (the key text) and/or
 * LIFEBOAT_AGE_IDENTITY_FILE (an identity file as `age-keygen` writes it).
 * Their content is never printed.
 */
export async function loadIdentities(env: NodeJS.ProcessEnv): Promise<string[]> {
  const found: string[] = [];
  if (env.LIFEBOAT_AGE_IDENTITY) found.push(...keyLines(env.LIFEBOAT_AGE_IDENTITY));
  const file = env.LIFEBOAT_AGE_IDENTITY_FILE;
  if (file) {
    const text = await readFile(file, 'utf8').catch((err: Error) => {
      throw new ConfigError(`Cannot read LIFEBOAT_AGE_IDENTITY_FILE (${file}): ${err.message}`);
    });
    found.push(...keyLines(text));
  }
  const bad = found.filter((k) => !IDENTITY.test(k));
  if (bad.length > 0)
    throw new ConfigError(
      `The age identity holds ${bad.length} line(s) that are not age secret keys (AGE-SECRET-KEY-1...).`,
    );
  return found;
}

export async function encryptStream(recipients: string[], plain: Readable): Promise<Readable> {
  const { Encrypter } = await import('age-encryption');
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  const out = await e.encrypt(pulledStream(plain));
  return Readable.fromWeb(out);
}

/** Decrypt with any of the identities; a file none of them opens is bad input (exit 2). */
export async function decryptStream(
  identities: string[],
  cipher: Readable,
  what: string,
): Promise<Readable> {
  if (identities.length === 0) {
    cipher.destroy();
    throw new BadInputError(
      `${what} is encrypted and no age identity is configured; set LIFEBOAT_AGE_IDENTITY_FILE (or LIFEBOAT_AGE_IDENTITY) to a key it was encrypted to.`,
    );
  }
  const { Decrypter } = await import('age-encryption');
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  try {
    const out = await d.decrypt(pulledStream(cipher));
    return Readable.fromWeb(out);
  } catch (err) {
    cipher.destroy();
    const reason = (err as Error).message;
    if (/no identity matched/i.test(reason))
      throw new BadInputError(
        `${what} is encrypted to other keys: none of the configured age identities opens it.`,
      );
    throw new Error(`${what} cannot be decrypted: ${reason}`, { cause: err });
  }
}

/**
 * A web stream that reads its Node source only when asked. Readable.toWeb
 * on Node 20 reads ahead of the consumer: about 25 MB more at the peak of an
 * encrypted copy, measured.
 */
function pulledStream(source: Readable): ReadableStream<Uint8Array> {
  const chunks = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next: IteratorResult<Buffer> = await chunks.next();
        if (next.done) controller.close();
        else {
          const chunk = next.value;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
        }
      },
      cancel(reason) {
        source.destroy(reason instanceof Error ? reason : undefined);
      },
    },
    { highWaterMark: 1 },
  );
}
