// What a call threw, for tests that look at an error's code and fields.

/** The error `fn` throws; fails the test if it returns instead. */
export function thrown(fn: () => unknown): { code?: unknown; offset?: unknown; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code?: unknown; offset?: unknown; message: string };
  }
  throw new Error('expected an error');
}
