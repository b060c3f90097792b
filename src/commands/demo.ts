import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { shellQuote } from '../cleanup/restore.ts';
import { probeCapabilities } from '../mongo/capabilities.ts';
import { connectSource } from '../mongo/connection.ts';
import { redactUri } from '../mongo/redact.ts';
import { type SandboxProcess, startSandboxProcess } from '../sandbox/process.ts';
import { runConsole } from './console.tsx';

export interface DemoOptions {
  dataDir: string;
  fresh: boolean;
  /** Keep the two clusters running for headless use (no console) until Ctrl+C. */
  ui?: boolean;
}

export interface DemoClusters {
  olorin: SandboxProcess;
  bayit: SandboxProcess;
  stop(): Promise<void>;
}

/** Two sandbox servers standing in for the Olorin and Bayit+ clusters, seeded and persisted under dataDir. */
export async function startDemoClusters(options: DemoOptions): Promise<DemoClusters> {
  if (options.fresh) await rm(options.dataDir, { recursive: true, force: true });
  const [olorin, bayit] = await Promise.all([
    // One-member replica sets, so the console's counts are live (change streams).
    startSandboxProcess({
      seed: 'olorin:platform',
      dataDir: join(options.dataDir, 'olorin'),
      replicaSet: 'olorin',
    }),
    startSandboxProcess({
      seed: 'olorin:bayit',
      dataDir: join(options.dataDir, 'bayit'),
      replicaSet: 'bayit',
    }),
  ]);
  return { olorin, bayit, stop: async () => void (await Promise.all([olorin.stop(), bayit.stop()])) };
}

/** A connection summary of both clusters, read through the driver. */
export async function describeClusters(sources: Record<string, string>): Promise<string[]> {
  const lines: string[] = [];
  for (const [name, uri] of Object.entries(sources)) {
    const client = await connectSource(name, uri);
    try {
      const caps = await probeCapabilities(client);
      lines.push(
        `${name}: ${redactUri(uri)}  (${caps.sandbox ? 'sandbox' : 'mongod'} ${caps.version}, ${caps.topology}, ${caps.roundTripMs.toFixed(1)} ms)`,
      );
      const { databases } = await client.db('admin').command({ listDatabases: 1, nameOnly: true });
      for (const { name: dbName } of databases as { name: string }[]) {
        if (['admin', 'local', 'config'].includes(dbName)) continue;
        const db = client.db(dbName);
        const collections = (await db.listCollections({}, { nameOnly: true }).toArray())
          .map((c) => c.name)
          .sort();
        const counts = await Promise.all(collections.map((c) => db.collection(c).estimatedDocumentCount()));
        lines.push(
          `  ${dbName}: ${collections.map((c, i) => `${c} ${counts[i].toLocaleString('en-US')}`).join(', ')}`,
        );
      }
    } finally {
      await client.close();
    }
  }
  return lines;
}

/**
 * `npm run demo`: two seeded sandbox clusters, then the console on them (a connection summary when there
 * is no terminal). The clusters keep their data, exceptions and history under dataDir between runs.
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  // The demo's two clusters are separate databases, so the design note's switch is on for this session.
  process.env.OLORIN_USE_SEPARATE_DATABASE ??= 'true';
  const clusters = await startDemoClusters(options);
  const dataDir = resolve(options.dataDir);
  const backupDir = join(dataDir, 'backups');
  try {
    const sources = [`olorin=${clusters.olorin.uri}`, `bayit=${clusters.bayit.uri}`];
    // How to reach the demo clusters from another terminal, with the CLI or any client.
    const reach = [
      `export OLORIN_MONGODB_URI='${clusters.olorin.uri}' BAYIT_MONGODB_URI='${clusters.bayit.uri}' OLORIN_USE_SEPARATE_DATABASE=true ORPHAN_CLEANUP_BACKUP_DIR=${shellQuote(backupDir)}`,
      `(the ports change at each start; the backups and the data stay under ${dataDir})`,
    ];
    if (options.ui === false) {
      process.stdout.write(
        `${reach.join('\n')}\nthe demo clusters run until Ctrl+C; in another terminal, after the export: orphan-cleanup scan\n`,
      );
      await new Promise<void>((resolve) => {
        process.once('SIGINT', () => resolve());
        process.once('SIGTERM', () => resolve());
      });
      return 0;
    }
    process.stdout.write(`${reach.join('\n')}\n`);
    if (process.stdout.isTTY && process.stdin.isTTY) {
      return await runConsole({ source: sources, backupDir });
    }
    const lines = await describeClusters({ olorin: clusters.olorin.uri, bayit: clusters.bayit.uri });
    process.stdout.write(
      `${lines.join('\n')}\n(no terminal: run \`npm run demo\` in a terminal for the console)\n`,
    );
    return 0;
  } finally {
    await clusters.stop();
  }
}
