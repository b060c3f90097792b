import { MongoServerError } from 'mongodb';
import { expect } from 'vitest';

/** The server's error for a command expected to fail (the test fails when it succeeds or fails otherwise). */
export async function serverError(promise: Promise<unknown>): Promise<MongoServerError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(MongoServerError);
  return error as MongoServerError;
}
