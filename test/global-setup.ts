import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The tests run the real binary, as shipped: compiled to dist/ from the sources under test. */
export default function buildOnce(): void {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    stdio: 'inherit',
  });
}
