import { describe, expect, it } from 'vitest';
import { ProbeScheduler } from '../../src/engine/probe-scheduler.ts';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('ProbeScheduler', () => {
  it('surfaces a failure that happened while fewer than the limit were in flight and nobody was waiting', async () => {
    const probes = new ProbeScheduler(4);
    await probes.start(async () => {
      throw new Error('probe timed out');
    });
    await tick();
    // The failed task is no longer in flight, yet its failure is not lost.
    expect(probes.size).toBe(0);
    expect(probes.failed).toBe(true);
    await expect(probes.settle()).rejects.toThrow('probe timed out');
    await expect(probes.start(async () => undefined)).rejects.toThrow('probe timed out');
  });

  it('keeps at most `limit` tasks in flight and waits for all of them at settle', async () => {
    const probes = new ProbeScheduler(2);
    let running = 0;
    let most = 0;
    let finished = 0;
    const task = async () => {
      running++;
      most = Math.max(most, running);
      await tick();
      running--;
      finished++;
    };
    for (let i = 0; i < 7; i++) await probes.start(task);
    await probes.settle();
    expect([most, finished, probes.failed]).toEqual([2, 7, false]);
  });
});
