import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { redact } from '../mongo/redact.ts';
import { ensureWritableDir } from '../paths.ts';

export const AUDIT_FILE = 'audit.jsonl';

/** Appends one JSON line to `<backupRoot>/audit.jsonl`: a local trail next to the backups it describes. */
export async function appendAudit(backupRoot: string, record: Record<string, unknown>): Promise<void> {
  await ensureWritableDir(backupRoot, 'backup directory');
  await appendFile(
    join(backupRoot, AUDIT_FILE),
    `${redact(JSON.stringify({ at: new Date().toISOString(), ...record }))}\n`,
    { mode: 0o600 },
  );
}
