import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connectSource, failureHint } from '../../src/mongo/connection.ts';

/** A port nothing listens on: bound, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('what a failed connection tells the operator to check', () => {
  it('a refused port, an unknown host and a silent server each get their own hint, with the source named', async () => {
    const port = await closedPort();
    await expect(
      connectSource('olorin', `mongodb://127.0.0.1:${port}/?serverSelectionTimeoutMS=2000`),
    ).rejects.toThrow(
      /^source olorin \(.*\): connection refused: is the server running and the port right\?$/,
    );
    await expect(
      connectSource('bayit', 'mongodb://no-such-host.invalid:27017/?serverSelectionTimeoutMS=2000'),
    ).rejects.toThrow(/^source bayit \(.*\): host name not found: check the host in the URI and DNS$/);

    // A server that accepts the connection and never answers (a frozen or firewalled mongod).
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const { port: silentPort } = silent.address() as { port: number };
      await expect(
        connectSource(
          'olorin',
          `mongodb://127.0.0.1:${silentPort}/?serverSelectionTimeoutMS=1500&connectTimeoutMS=1000`,
        ),
      ).rejects.toThrow(/no answer in time: check the host, port, firewall or IP access list/);
    } finally {
      silent.close();
    }
  });

  it('server-side time limits and authentication are told apart from network trouble', () => {
    expect(
      failureHint({ code: 50, codeName: 'MaxTimeMSExpired', message: 'operation exceeded time limit' }),
    ).toMatch(/did not finish within maxTimeMS/);
    expect(failureHint({ code: 18, message: 'Authentication failed.' })).toMatch(/authentication failed/);
    expect(failureHint({ message: 'something else entirely' })).toBeUndefined();
  });
});
