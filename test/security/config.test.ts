import { mkdir, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { smallDatabase } from '../support/backups.js';
import { runCli, runJson, workspace } from '../support/cli.js';
import type { TestDatabase } from '../support/db.js';

/**
 * The config decides where backups go and which servers lifeboat talks to:
 * it is found only where the user put it, runs no code unless named, and
 * never makes lifeboat hand the target's password to another server.
 */
async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** A config that leaves a mark when it is executed. */
function codeConfig(marker: string): string {
  return `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'ran');\nmodule.exports = {};\n`;
}

describe('finding the config', () => {
  let ws: Awaited<ReturnType<typeof workspace>>;
  beforeAll(async () => {
    ws = await workspace();
  });
  afterAll(async () => {
    await ws.cleanup();
  });

  it('stops at the repository root: a config above it is neither read nor run', async () => {
    const marker = path.join(ws.dir, 'ran-above-repo');
    await writeFile(path.join(ws.dir, 'lifeboat.config.cjs'), codeConfig(marker));
    await writeFile(path.join(ws.dir, 'lifeboat.config.json'), '{ "bogus": true }');
    const cwd = path.join(ws.dir, 'repo', 'app');
    await mkdir(path.join(ws.dir, 'repo', '.git'), { recursive: true });
    await mkdir(cwd, { recursive: true });
    const r = await runCli(['backups', 'list'], { cwd });
    expect(r.code, r.stderr).toBe(0);
    expect(await exists(marker)).toBe(false);
    // Inside the repository it is found.
    await writeFile(path.join(ws.dir, 'repo', 'lifeboat.config.json'), '{ "bogus": true }');
    const inside = await runCli(['backups', 'list'], { cwd });
    expect(inside.code).toBe(2);
    // The repository's own config (one level up from repo/app), not the one above the repository.
    expect(inside.stderr).toMatch(/ \.\.\/lifeboat\.config\.json:1:\d+: bogus: unknown key/);
  });

  it('stops at the home directory', async () => {
    const home = path.join(ws.dir, 'home');
    const cwd = path.join(home, 'project');
    await mkdir(cwd, { recursive: true });
    await writeFile(path.join(ws.dir, 'lifeboat.config.yaml'), 'bogus: true\n');
    const r = await runCli(['backups', 'list'], { cwd, env: { HOME: home } });
    expect(r.code, r.stderr).toBe(0);
  });

  it('runs a code config only when named with --config', async () => {
    const dir = path.join(ws.dir, 'code');
    await mkdir(path.join(dir, '.git'), { recursive: true });
    const marker = path.join(dir, 'ran');
    await writeFile(path.join(dir, 'lifeboat.config.cjs'), codeConfig(marker));
    const found = await runCli(['backups', 'list'], { cwd: dir });
    expect(found.code).toBe(2);
    expect(found.stderr).toMatch(
      /^error: lifeboat\.config\.cjs is code: lifeboat runs a config file only when it is named, with --config lifeboat\.config\.cjs/m,
    );
    expect(await exists(marker)).toBe(false);
    const named = await runCli(['backups', 'list', '--config', 'lifeboat.config.cjs'], {
      cwd: dir,
    });
    expect(named.code, named.stderr).toBe(0);
    expect(await exists(marker)).toBe(true);
  });
});

describe('scratchUrl on another host', () => {
  let db: TestDatabase;
  let fake: Server;
  let port: number;
  const received: string[] = [];
  beforeAll(async () => {
    db = await smallDatabase('sec_scratch_pw', 20);
    // A server that asks for the password in clear text and keeps what it is sent.
    fake = createServer((socket: Socket) => {
      let buffer = Buffer.alloc(0);
      let started = false;
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        for (;;) {
          if (!started) {
            if (buffer.length < 8) return;
            const length = buffer.readInt32BE(0);
            if (buffer.length < length) return;
            const code = buffer.readInt32BE(4);
            buffer = buffer.subarray(length);
            if (code === 80877103 || code === 80877104) {
              socket.write('N'); // no SSL, no GSS
              continue;
            }
            started = true;
            const ask = Buffer.alloc(9);
            ask.write('R', 0);
            ask.writeInt32BE(8, 1);
            ask.writeInt32BE(3, 5); // AuthenticationCleartextPassword
            socket.write(ask);
            continue;
          }
          if (buffer.length < 5) return;
          const length = buffer.readInt32BE(1);
          if (buffer.length < length + 1) return;
          if (buffer[0] === 0x70) received.push(buffer.subarray(5, length).toString('utf8'));
          buffer = buffer.subarray(length + 1);
          const fields = Buffer.from('SFATAL\0C28P01\0Mpassword authentication failed\0\0');
          const error = Buffer.alloc(5);
          error.write('E', 0);
          error.writeInt32BE(fields.length + 4, 1);
          socket.end(Buffer.concat([error, fields]));
          return;
        }
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.2', resolve));
    port = (fake.address() as { port: number }).port;
  });
  afterAll(async () => {
    fake?.close();
    await db?.drop();
  });

  it("never receives the target's PGPASSWORD; it gets a password of its own or none", async () => {
    const ws = await workspace({ scratchUrl: `postgres://verifier@127.0.0.2:${port}/postgres` });
    try {
      const target = new URL(db.url);
      const env = {
        PGHOST: target.hostname,
        PGPORT: target.port,
        PGUSER: decodeURIComponent(target.username),
        PGPASSWORD: decodeURIComponent(target.password),
        PGDATABASE: db.name,
      };
      for (const args of [['backup'], ['doctor']]) {
        const r = await runJson(args, { cwd: ws.dir, env });
        expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      }
      expect(received.join('\n')).not.toContain(env.PGPASSWORD);
      // A password written in the scratch URL itself is the scratch server's own: that one is sent.
      const own = await workspace({
        scratchUrl: `postgres://verifier:scratch-own-pass@127.0.0.2:${port}/postgres`,
      });
      try {
        const r = await runJson(['backup'], { cwd: own.dir, env });
        expect(r.code).toBe(2);
        expect(received).toContain('scratch-own-pass');
        expect(r.stdout + r.stderr).not.toContain('scratch-own-pass');
      } finally {
        await own.cleanup();
      }
      expect(received.join('\n')).not.toContain(env.PGPASSWORD);
    } finally {
      await ws.cleanup();
    }
  });
});
