/** What the helpers need of a rendered console: ink-testing-library's render, or renderInTerminal's. */
interface Rendered {
  lastFrame(): string | undefined;
  stdin: { write(data: string): void };
}

export const KEY = {
  enter: '\r',
  escape: '\u001b',
  down: '\u001b[B',
  up: '\u001b[A',
  right: '\u001b[C',
  left: '\u001b[D',
  tab: '\t',
  shiftTab: '\u001b[Z',
  pageDown: '\u001b[6~',
  pageUp: '\u001b[5~',
} as const;

/** Waits until the last frame satisfies `predicate` (React 19 schedules renders; no fixed sleeps). */
export async function waitForFrame(
  r: Rendered,
  predicate: (frame: string) => boolean,
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const frame = r.lastFrame() ?? '';
    if (predicate(frame)) return frame;
    if (Date.now() > deadline) throw new Error(`frame never matched; last frame:\n${frame}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function waitForText(r: Rendered, text: string | RegExp, timeoutMs?: number): Promise<string> {
  return waitForFrame(
    r,
    (frame) => (typeof text === 'string' ? frame.includes(text) : text.test(frame)),
    timeoutMs,
  );
}

/** Sends keys one write at a time (Ink reads one write as one input), letting each render first. */
export async function press(r: Rendered, ...keys: string[]): Promise<void> {
  for (const key of keys) {
    r.stdin.write(key);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
}

/** Types text and Enter into the open prompt, once it shows it takes keys ("> "), as an operator would. */
export async function type(r: Rendered, text: string): Promise<void> {
  await waitForFrame(r, (frame) => /│ > /.test(frame));
  await press(r, ...text.split(''), KEY.enter);
}

/**
 * The text of a frame's bordered boxes as the operator reads it: borders dropped and each box's wrapped lines
 * joined by one space, so a command wrapped at the box's width (it depends on the checkout's path) reads whole.
 */
export function unwrapped(frame: string): string {
  const out: string[] = [];
  let box: string[] | undefined;
  for (const line of frame.split('\n')) {
    const inner = /^\s*│(.*)│\s*$/.exec(line);
    if (inner) {
      box = box ?? [];
      box.push(inner[1].trim());
    } else {
      if (box) out.push(box.join(' '));
      box = undefined;
      out.push(line);
    }
  }
  if (box) out.push(box.join(' '));
  return out.join('\n');
}
