/**
 * Errors a user can act on. Each carries one line that names the thing at fault (file, node,
 * op, flag) and, where there is one, the fix. The CLI prints `message` alone, never a stack,
 * and exits with `exitCode`: 2 for bad input, 1 for a check that failed.
 */
export class MobilizeError extends Error {
  readonly exitCode: 1 | 2;

  constructor(message: string, options: { exitCode?: 1 | 2; cause?: unknown } = {}) {
    super(oneLine(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MobilizeError';
    this.exitCode = options.exitCode ?? 2;
  }
}

/**
 * Messages quote names taken from files, which a hostile file can fill with newlines, escape
 * sequences or megabytes of text: show control characters escaped and cut the message short.
 */
function oneLine(message: string): string {
  let clean = '';
  for (const ch of message) {
    const c = ch.codePointAt(0) ?? 0;
    clean += c < 0x20 || (c >= 0x7f && c <= 0x9f) ? `\\x${c.toString(16).padStart(2, '0')}` : ch;
    if (clean.length > 1000) return `${clean.slice(0, 1000)}…`;
  }
  return clean;
}

/** Bad input: a model, dataset, flag or file the user gave that we cannot take. Exit code 2. */
export function badInput(message: string, cause?: unknown): MobilizeError {
  return new MobilizeError(message, { exitCode: 2, cause });
}

/** A check that ran and failed (outputs differ, accuracy dropped too far). Exit code 1. */
export function checkFailed(message: string): MobilizeError {
  return new MobilizeError(message, { exitCode: 1 });
}

export function isMobilizeError(e: unknown): e is MobilizeError {
  return e instanceof MobilizeError;
}

/** The first line of an unknown thrown value, for wrapping foreign errors into one line. */
export function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  return line.trim();
}
