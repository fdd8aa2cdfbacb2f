import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * TypeScript migrations need a loader in the process that runs knex, as they
 * do under `knex migrate:latest`. lifeboat uses the project's own: tsx (for
 * CommonJS and ESM alike) or ts-node (CommonJS), found from the migrations
 * directory as Node would find it. Finding it only resolves a path; nothing
 * runs until a run registers it.
 */
export type TypeScriptLoader = 'tsx' | 'ts-node';

export function findTypeScriptLoader(directory: string): TypeScriptLoader | undefined {
  const resolve = resolverFrom(directory);
  if (resolve('tsx/cjs/api') && resolve('tsx/esm/api')) return 'tsx';
  if (resolve('ts-node')) return 'ts-node';
  return undefined;
}

const registered = new Set<string>();

/** Register the project's loader once per process, before knex loads a `.ts` migration. */
export async function registerTypeScriptLoader(directory: string): Promise<void> {
  const loader = findTypeScriptLoader(directory);
  if (!loader) {
    throw new Error(
      `no TypeScript loader (tsx or ts-node) is installed where ${directory} can find it`,
    );
  }
  const resolve = resolverFrom(directory);
  const require = createRequire(path.join(directory, 'noop.js'));
  if (loader === 'tsx') {
    const cjs = resolve('tsx/cjs/api')!;
    if (registered.has(cjs)) return;
    (require(cjs) as { register(): unknown }).register();
    // The ESM hooks through tsx's ESM entry (its `import` export), as `node --import tsx` would.
    const manifest = resolve('tsx/package.json')!;
    const pkg = JSON.parse(await readFile(manifest, 'utf8')) as {
      exports: Record<string, { import: { default: string } }>;
    };
    const esm = path.join(path.dirname(manifest), pkg.exports['./esm/api']!.import.default);
    const esmApi = (await import(pathToFileURL(esm).href)) as { register(): unknown };
    esmApi.register();
    registered.add(cjs);
    return;
  }
  const tsNode = resolve('ts-node')!;
  if (registered.has(tsNode)) return;
  (require(tsNode) as { register(options: object): unknown }).register({ transpileOnly: true });
  registered.add(tsNode);
}

function resolverFrom(directory: string): (id: string) => string | undefined {
  const require = createRequire(path.join(directory, 'noop.js'));
  return (id) => {
    try {
      return require.resolve(id);
    } catch {
      return undefined;
    }
  };
}
