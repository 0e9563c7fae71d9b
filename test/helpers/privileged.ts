/**
 * Gates for tests that need root.
 *
 * The namespace tests build network namespaces and veth links, which needs CAP_NET_ADMIN
 * in the initial user namespace; in practice that means running as root. `npm test` as an
 * ordinary user must still pass, so those blocks are skipped there, visibly (jest counts
 * them as skipped, never as passed) and with one message saying why. CI runs as root and
 * sets IP6SOCK_REQUIRE_PRIVILEGED=1, which turns a would-be skip into a failure, so a CI
 * machine that silently lost root cannot report green.
 */

/** The variable CI sets so that missing privilege fails the run instead of skipping. */
export const REQUIRE_PRIVILEGED_ENV = 'IP6SOCK_REQUIRE_PRIVILEGED';

/** True when this process runs with uid 0 (the namespace test bed needs it). */
export function isRoot(): boolean {
  // process.getuid is missing on Windows; the library is Linux-only, but say "not root"
  // rather than crash when someone opens the test suite elsewhere.
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** True when the environment demands that privileged tests run (CI). */
export function privilegedRequired(): boolean {
  return process.env[REQUIRE_PRIVILEGED_ENV] === '1';
}

/** The reason printed (or thrown) when a root-only block cannot run. */
function reason(name: string): string {
  return (
    `skipping ${name}: needs root (CAP_NET_ADMIN to build network namespaces); ` +
    `run as root or set ${REQUIRE_PRIVILEGED_ENV}=1 to make this a failure`
  );
}

function requiredButMissing(name: string): string {
  return (
    `${name}: the privileged tests were required (${REQUIRE_PRIVILEGED_ENV}=1) but this ` +
    `process is not root (uid ${typeof process.getuid === 'function' ? process.getuid() : '?'}); ` +
    'they need CAP_NET_ADMIN to build network namespaces'
  );
}

// Jest gives every test file its own module registry, so this flag is per file: one
// warning per file, not one per block and not one per worker.
let warned = false;

function warnOnce(name: string): void {
  if (warned) return;
  warned = true;
  console.warn(`${reason(name)} (and any other root-only block in this file)`);
}

/**
 * Like `describe`, for blocks that need root.
 *
 * - root: an ordinary `describe`.
 * - not root, IP6SOCK_REQUIRE_PRIVILEGED=1: a block with one failing test that says so.
 * - not root otherwise: the block is registered as skipped (its tests show as skipped in
 *   jest's summary) and one warning per file explains why and how to run it.
 */
export function describeRoot(name: string, fn: () => void): void {
  if (isRoot()) {
    describe(name, fn);
    return;
  }
  if (privilegedRequired()) {
    describe(name, () => {
      test('runs as root', () => {
        throw new Error(requiredButMissing(name));
      });
    });
    return;
  }
  warnOnce(name);
  // The one deliberate, environment-dependent skip of the suite: only when not root and
  // not required. It goes through jest's own skip so the summary reports "skipped".
  const skipped: jest.Describe = describe.skip;
  skipped(name, fn);
}

/**
 * Like `test`, for a single test that needs root, with the same policy as describeRoot
 * (ordinary test / failing test / visibly skipped test with one warning per file).
 */
export function testRoot(name: string, fn: jest.ProvidesCallback, timeout?: number): void {
  if (isRoot()) {
    test(name, fn, timeout);
    return;
  }
  if (privilegedRequired()) {
    test(name, () => {
      throw new Error(requiredButMissing(name));
    });
    return;
  }
  warnOnce(name);
  const skipped: jest.It = test.skip;
  skipped(name, fn, timeout);
}

/**
 * Throws a clear error unless this process is root. Call it at the start of code that
 * needs root but is not already inside describeRoot/testRoot (the topology builders call
 * it), so a misuse fails with the reason instead of a bare "Operation not permitted".
 */
export function requireRoot(what = 'this test'): void {
  if (!isRoot()) {
    throw new Error(
      `${what} needs root (CAP_NET_ADMIN to build network namespaces); ` +
        'wrap it in describeRoot()/testRoot() from test/helpers/privileged',
    );
  }
}
