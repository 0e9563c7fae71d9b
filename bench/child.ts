/**
 * Entry point of every Node process the bench starts inside a namespace:
 *
 *   ip netns exec NS [taskset -c CPU] node bench/bin/js/bench/child.js ROLE [options]
 *
 * node:dgram cannot open a socket in another namespace, so each implementation under test
 * runs in its own process inside the namespace (ip6sock too, for a like-for-like
 * comparison: same process layout, same CPU pinning). Roles live in bench/roles/.
 * @packageDocumentation
 */
import { joiner } from './roles/joiner';
import { echo, ping } from './roles/pingpong';
import { receiver } from './roles/receiver';
import { relay } from './roles/relay';
import { sender } from './roles/sender';

const roles: Record<string, (argv: string[]) => void | Promise<void>> = { receiver, sender, echo, ping, relay, joiner };

async function main(): Promise<void> {
  const [role, ...argv] = process.argv.slice(2);
  const run = role !== undefined && Object.prototype.hasOwnProperty.call(roles, role) ? roles[role] : undefined;
  if (run === undefined) throw new Error(`usage: child.js ${Object.keys(roles).join('|')} [options]`);
  await run(argv);
}

main().catch((err: unknown) => {
  // The bench shows this text when the child exits before it is ready.
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
