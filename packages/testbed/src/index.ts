/**
 * @ip6sock/testbed — multi-host test bed: named topologies of Linux network namespaces joined by veth links.
 *
 * Every "host" is a network namespace (`ip netns`), every link a veth pair whose ends are
 * created directly inside their namespaces. ip6sock's `netns` option then opens sockets
 * inside them, so one process (a test worker, the demo) can play sender, router and receiver at once
 * without touching the machine's own interfaces. It needs only Node and iproute2; it does
 * not depend on ip6sock.
 *
 * Why it is built the way it is:
 * - Each veth end is created in its namespace with an explicit ifindex; carrier then comes up
 *   in milliseconds instead of about a second.
 * - accept_dad=0 is set in every namespace before any link exists, addresses are added with
 *   `nodad`, and interfaces that get a hand-picked fe80:: address use `addrgenmode none`:
 *   addresses are usable the moment `ip` returns and each interface has exactly one
 *   link-local address, so tests never wait for DAD or guess which link-local is which.
 * - Commands go through `ip -batch` (one process per namespace and phase), run in parallel:
 *   a 3-host chain comes up in roughly 20-40 ms.
 * - ifindexes are distinct across the whole topology (10, 11, 12, ...), although each
 *   namespace has its own index space: an index taken from the wrong host then gives ENODEV
 *   instead of silently naming some other interface.
 *
 * Multicast routing inside the namespaces (what a socket that names no interface gets):
 * - IPv6: the kernel adds `multicast ff00::/8 dev IF table local` for every interface that is
 *   up, so ff02::/ff05::/ff0e:: sends work with no extra route. On a host with several links
 *   (router, hub) the lookup picks one of them: tests there must name the interface.
 * - IPv4: nothing is added by the kernel; without a route a send to 224.0.1.1 fails with
 *   ENETUNREACH. Hosts with a single link get `224.0.0.0/4 dev eth0`; multi-link hosts get
 *   none, for the same reason as above.
 *
 * Cleanup: each topology records its namespaces; destroy() deletes them. A process-wide
 * registry keeps whatever is not deleted yet: destroyAllSync() deletes all of it (call it
 * from a test runner's after-all hook, or in a finally), and a synchronous 'exit' handler of
 * the process does the same as a last resort (a forgotten destroy(), an unhandled error).
 * @packageDocumentation
 * @module @ip6sock/testbed
 */
import { execFile, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';

// ---------------------------------------------------------------------------------------
// Running commands

/** stdout and stderr of a finished command. */
export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
}

/** Options for commands run inside a namespace. */
export interface ExecOptions {
  /** Text written to the command's standard input. */
  readonly input?: string;
  /** Kill the command (SIGKILL) after this many milliseconds. Default 20,000. */
  readonly timeoutMs?: number;
}

/** A command that failed: the message names the command, how it ended, and its stderr. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    /** The argv that was run, program first. */
    readonly command: readonly string[],
    /** Exit status, or null when killed by a signal or never started. */
    readonly status: number | null,
    readonly signal: string | null,
    readonly stdout: string,
    readonly stderr: string,
    /** The standard input given (the `ip -batch` script), shown in the message. */
    readonly input?: string,
    /** The spawn error, when the program could not be started at all. */
    readonly spawnError?: Error,
  ) {
    super(CommandError.describe(command, status, signal, stdout, stderr, input, spawnError));
  }

  private static describe(
    command: readonly string[],
    status: number | null,
    signal: string | null,
    stdout: string,
    stderr: string,
    input: string | undefined,
    spawnError: Error | undefined,
  ): string {
    const line = command.map(quote).join(' ');
    const how = spawnError
      ? `could not start (${spawnError.message})${command[0] === 'ip' ? '; is iproute2 installed?' : ''}`
      : status !== null
        ? `exit ${status}`
        : `killed by ${signal ?? 'a signal'}`;
    let msg = `${line} failed: ${how}`;
    if (stderr.trim() !== '') msg += `\nstderr: ${stderr.trim()}`;
    // Some programs (ping) report only on stdout; its tail is what explains the failure.
    if (stdout.trim() !== '') msg += `\nstdout: ${stdout.trim().slice(-2000)}`;
    if (input !== undefined && input !== '') msg += `\nstdin:\n${input.trimEnd()}`;
    return msg;
  }
}

function quote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

const DEFAULT_TIMEOUT_MS = 20_000;

/** Runs a program asynchronously; rejects with a CommandError on any failure. */
function run(command: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = command;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: 'SIGKILL',
      },
      (error, stdout, stderr) => {
        if (!error) {
          resolve({ stdout, stderr });
          return;
        }
        // A numeric code is the exit status; a string code (ENOENT...) means no start.
        const status = typeof error.code === 'number' ? error.code : null;
        const spawnError = typeof error.code === 'string' ? error : undefined;
        reject(
          new CommandError(command, status, error.signal ?? null, stdout, stderr, options.input, spawnError),
        );
      },
    );
    // Always close stdin: `ip -batch -` and friends would otherwise wait for more input.
    child.stdin?.on('error', () => {
      /* the program exited before reading its input; its exit status tells the story */
    });
    child.stdin?.end(options.input ?? '');
  });
}

/** Synchronous twin of run(), for cleanup and exit paths that must not yield. */
function runSync(command: readonly string[], options: ExecOptions = {}): ExecResult {
  const [file, ...args] = command;
  const r = spawnSync(file, args, {
    encoding: 'utf8',
    input: options.input ?? '',
    maxBuffer: 64 * 1024 * 1024,
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  if (r.error || r.status !== 0) {
    throw new CommandError(
      command,
      r.status,
      r.signal,
      r.stdout ?? '',
      r.stderr ?? '',
      options.input,
      r.error && (r.error as NodeJS.ErrnoException).code !== 'ETIMEDOUT' ? r.error : undefined,
    );
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

// ---------------------------------------------------------------------------------------
// Process-wide state

/** What must outlive any one instance of this module. */
interface TestbedState {
  /** Next topology number of this process (part of every namespace name). */
  counter: number;
  /** Every namespace created and not yet deleted. */
  readonly live: Set<string>;
  /** pids of processes started by Topology.spawn and not yet seen to exit. */
  readonly children: Set<number>;
  /** Removal of leftovers of an earlier process with our pid (once). */
  sweep: Promise<void> | undefined;
}

const STATE_KEY = Symbol.for('ip6sock.testbed');

type ProcessWithState = NodeJS.Process & { [STATE_KEY]?: TestbedState };

/** The process that carries the registry and whose 'exit' event runs the last cleanup. */
let hostProcess: ProcessWithState = process;

/**
 * Names the process object that carries the test bed's registry and whose 'exit' event
 * runs its last-resort cleanup. The default, the global `process`, is right for ordinary
 * programs. A host that loads this module in a sandbox with its own copy of `process` (one
 * whose events never fire, or one per loaded file) passes the real one, before building
 * anything; every copy of this module given the same process then shares one registry.
 */
export function setHostProcess(proc: NodeJS.Process): void {
  hostProcess = proc;
}

function state(): TestbedState {
  const proc = hostProcess;
  let s = proc[STATE_KEY];
  if (!s) {
    s = { counter: 0, live: new Set(), children: new Set(), sweep: undefined };
    proc[STATE_KEY] = s;
    const shared = s;
    // Last resort. 'exit' handlers must be synchronous, hence spawnSync.
    proc.on('exit', () => {
      killChildren(shared.children);
      try {
        if (shared.live.size > 0) deleteNamespacesSync([...shared.live]);
      } catch (error) {
        // Too late to fail anything; at least say what was left behind.
        process.stderr.write(`ip6sock test bed: could not delete namespaces at exit: ${String(error)}\n`);
      }
    });
  }
  return s;
}

/** Prefix of every namespace name this process creates: unique per process. */
export function namespacePrefix(): string {
  return `i6s-${process.pid}-`;
}

/** Names in `ip netns list` (its lines look like "name" or "name (id: 3)"). */
async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(['ip', 'netns', 'list']);
  return parseNetnsList(stdout);
}

function listNamespacesSync(): string[] {
  return parseNetnsList(runSync(['ip', 'netns', 'list']).stdout);
}

function parseNetnsList(stdout: string): string[] {
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n): n is string => n !== undefined && n !== '');
}

/**
 * Namespaces already carrying this process's exact prefix can only be left over from a dead
 * process that had the same pid (pids are reused), e.g. a run killed with
 * SIGKILL. They would collide with our names, so they go. Nothing else is touched.
 */
function sweepOwnPrefix(s: TestbedState): Promise<void> {
  // Memoized: concurrent first builds all wait for the one sweep, which runs before any
  // namespace of ours exists.
  s.sweep ??= (async () => {
    const prefix = namespacePrefix();
    const stale = (await listNamespaces()).filter((n) => n.startsWith(prefix));
    if (stale.length > 0) await deleteNamespaces(stale);
  })();
  return s.sweep;
}

function netnsDelScript(names: readonly string[]): string {
  return names.map((n) => `netns del ${n}\n`).join('');
}

/**
 * Deletes namespaces; ones already gone are fine. `-force` keeps the batch going past a
 * failed line; if it failed, only namespaces that still exist make it an error.
 */
async function deleteNamespaces(names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  try {
    await run(['ip', '-force', '-batch', '-'], { input: netnsDelScript(names) });
  } catch (error) {
    const left = new Set(await listNamespaces());
    const survivors = names.filter((n) => left.has(n));
    if (survivors.length > 0) throw error;
  }
}

function deleteNamespacesSync(names: readonly string[]): void {
  if (names.length === 0) return;
  try {
    runSync(['ip', '-force', '-batch', '-'], { input: netnsDelScript(names) });
  } catch (error) {
    const left = new Set(listNamespacesSync());
    if (names.some((n) => left.has(n))) throw error;
  }
  const s = state();
  for (const n of names) s.live.delete(n);
}

function killChildren(pids: Set<number>): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  pids.clear();
}

/**
 * Deletes every namespace this process created and has not deleted yet, and kills the
 * processes started with Topology.spawn. For a test runner's after-all hook (so a test that
 * failed before its own destroy() still leaves nothing behind) or a program's finally.
 */
export function destroyAllSync(): void {
  const s = hostProcess[STATE_KEY];
  if (!s) return;
  killChildren(s.children);
  deleteNamespacesSync([...s.live]);
}


// ---------------------------------------------------------------------------------------
// Specs

/** One end of a link. */
export interface EndSpec<H extends string = string> {
  readonly host: H;
  /** Interface name inside the host (at most 15 characters). */
  readonly ifname: string;
  /** Addresses with prefix length, IPv6 and IPv4 ("2001:db8:1::1/64", "192.0.2.1/24"). */
  readonly addresses?: readonly string[];
  /**
   * A link-local address to use instead of the kernel's EUI-64 one ("fe80::1"); the
   * interface then has exactly this one. Omit to let the kernel pick.
   */
  readonly linkLocal?: string;
  /** Enslave this end to a bridge of its host (no addresses then). */
  readonly master?: string;
}

/** One namespace. */
export interface HostSpec {
  /**
   * sysctls set before any link exists, dotted ("net.ipv6.conf.all.forwarding": "1").
   * accept_dad=0 and router_solicitations=0 are always set.
   */
  readonly sysctl?: Readonly<Record<string, string>>;
  /** Bridges to create in this host (they come up with snooping off, see lan()). */
  readonly bridges?: readonly string[];
  /** Extra `ip -batch` lines run last (routes): "route add ::/0 via 2001:db8:1::2". */
  readonly commands?: readonly string[];
}

/** A whole topology: hosts and the veth links between them. */
export interface TopologySpec<H extends string = string> {
  /** Label used in messages ("chain", "star(3)"). */
  readonly kind: string;
  readonly hosts: Readonly<Record<H, HostSpec>>;
  readonly links: ReadonlyArray<readonly [EndSpec<H>, EndSpec<H>]>;
}

/** What the test bed knows about one interface. */
export interface InterfaceInfo {
  readonly name: string;
  readonly index: number;
  readonly kind: 'veth' | 'bridge';
  /** Addresses with prefix length as configured (link-local not included). */
  readonly addresses: readonly string[];
  /** The hand-picked link-local address, if any (no prefix length). */
  readonly linkLocal?: string;
  /** The other end of a veth. */
  readonly peer?: { readonly host: string; readonly ifname: string };
  readonly master?: string;
}

/** One host of a topology. */
export interface HostInfo {
  readonly name: string;
  /** The full `ip netns` name. */
  readonly netns: string;
  readonly interfaces: Readonly<Record<string, InterfaceInfo>>;
}

// Always set, in every namespace, before links exist (per-interface values are copied from
// "default" when an interface is created). router_solicitations=0 keeps captured traffic
// quiet: nobody here sends router advertisements.
const BASE_SYSCTL: Readonly<Record<string, string>> = {
  'net.ipv6.conf.all.accept_dad': '0',
  'net.ipv6.conf.default.accept_dad': '0',
  'net.ipv6.conf.default.router_solicitations': '0',
};

const HOST_NAME = /^[a-z][a-z0-9]{0,15}$/;
const IF_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,14}$/;
const FIRST_IFINDEX = 10;

// ---------------------------------------------------------------------------------------
// Topology

/** A built topology. Host names are typed so a typo is a compile error. */
export class Topology<H extends string = string> {
  /** Every namespace name of this topology starts with this. */
  readonly prefix: string;
  readonly hosts: Readonly<Record<H, HostInfo>>;
  /** Milliseconds from the first command to the topology being usable. */
  buildMs = 0;
  private destroying: Promise<void> | undefined;
  private readonly spawned = new Set<ChildProcess>();

  /** @internal use buildTopology() or one of the named builders. */
  constructor(
    readonly kind: string,
    prefix: string,
    hosts: Readonly<Record<H, HostInfo>>,
  ) {
    this.prefix = prefix;
    this.hosts = hosts;
  }

  /** Host names, in spec order. */
  get hostNames(): H[] {
    return Object.keys(this.hosts) as H[];
  }

  /** Every namespace name of this topology. */
  get namespaces(): string[] {
    return this.hostNames.map((h) => this.hosts[h].netns);
  }

  /** True once destroy() has been called. */
  get destroyed(): boolean {
    return this.destroying !== undefined;
  }

  private host(host: H): HostInfo {
    const info = Object.prototype.hasOwnProperty.call(this.hosts, host) ? this.hosts[host] : undefined;
    if (!info) throw new Error(`${this.kind}: no host ${JSON.stringify(host)} (hosts: ${this.hostNames.join(', ')})`);
    return info;
  }

  private iface(host: H, ifname: string): InterfaceInfo {
    const info = this.host(host).interfaces[ifname];
    if (!info) {
      const names = Object.keys(this.host(host).interfaces).join(', ');
      throw new Error(`${this.kind}: host ${host} has no interface ${ifname} (it has: lo, ${names})`);
    }
    return info;
  }

  /** Full network namespace name of a host (what `netns` options and `ip -n` take). */
  ns(host: H): string {
    return this.host(host).netns;
  }

  /** ifindex of an interface inside its host ("lo" is always 1). */
  ifindex(host: H, ifname: string): number {
    if (ifname === 'lo') {
      this.host(host);
      return 1;
    }
    return this.iface(host, ifname).index;
  }

  /** First configured address of the family on an interface, without prefix length. */
  address(host: H, ifname = 'eth0', family: 4 | 6 = 6): string {
    const found = this.iface(host, ifname).addresses.find((a) => a.includes(':') === (family === 6));
    if (!found) throw new Error(`${this.kind}: ${host} ${ifname} has no IPv${family} address`);
    return found.split('/')[0];
  }

  /** The hand-picked link-local address of an interface. */
  linkLocal(host: H, ifname = 'eth0'): string {
    const ll = this.iface(host, ifname).linkLocal;
    if (!ll) throw new Error(`${this.kind}: ${host} ${ifname} has no fixed link-local address`);
    return ll;
  }

  private argv(host: H, cmd: readonly string[]): string[] {
    if (cmd.length === 0) throw new Error('exec: empty command');
    if (this.destroyed) throw new Error(`${this.kind}: exec on ${host} after destroy()`);
    return ['ip', 'netns', 'exec', this.ns(host), ...cmd];
  }

  /** Runs a command inside a host's namespace (`ip netns exec`); rejects with CommandError. */
  exec(host: H, cmd: readonly string[], options?: ExecOptions): Promise<ExecResult> {
    try {
      return run(this.argv(host, cmd), options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Synchronous exec(). */
  execSync(host: H, cmd: readonly string[], options?: ExecOptions): ExecResult {
    return runSync(this.argv(host, cmd), options);
  }

  /**
   * Starts a long-running command inside a host (tcpdump, a peer daemon). It is killed by
   * destroy() (and by destroyAllSync() or the exit cleanup) if still running.
   */
  spawn(host: H, cmd: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const [file, ...args] = this.argv(host, cmd);
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    const pid = child.pid;
    if (pid !== undefined) {
      this.spawned.add(child);
      state().children.add(pid);
      child.once('exit', () => {
        this.spawned.delete(child);
        state().children.delete(pid);
      });
    }
    return child;
  }

  /** Deletes every namespace of the topology and kills its spawned processes. Idempotent. */
  destroy(): Promise<void> {
    if (!this.destroying) {
      this.killSpawned();
      const names = this.namespaces;
      this.destroying = deleteNamespaces(names).then(() => {
        const s = state();
        for (const n of names) s.live.delete(n);
      });
    }
    return this.destroying;
  }

  /** Synchronous destroy(), for paths that cannot await. Idempotent. */
  destroySync(): void {
    if (this.destroying) return;
    this.killSpawned();
    deleteNamespacesSync(this.namespaces);
    this.destroying = Promise.resolve();
  }

  /** `await using topo = await chain();` */
  [Symbol.asyncDispose](): Promise<void> {
    return this.destroy();
  }

  private killSpawned(): void {
    for (const child of this.spawned) {
      if (child.pid !== undefined) state().children.delete(child.pid);
      child.kill('SIGKILL');
    }
    this.spawned.clear();
  }
}

// ---------------------------------------------------------------------------------------
// Building

function validate<H extends string>(spec: TopologySpec<H>): void {
  const hosts = Object.keys(spec.hosts);
  if (hosts.length === 0) throw new Error(`${spec.kind}: no hosts`);
  for (const h of hosts) {
    if (!HOST_NAME.test(h)) throw new Error(`${spec.kind}: bad host name ${JSON.stringify(h)} (want ${HOST_NAME})`);
  }
  const seen = new Map<string, Set<string>>(hosts.map((h) => [h, new Set(spec.hosts[h as H].bridges ?? [])]));
  for (const link of spec.links) {
    for (const end of link) {
      const names = seen.get(end.host);
      if (!names) throw new Error(`${spec.kind}: link end on unknown host ${JSON.stringify(end.host)}`);
      if (!IF_NAME.test(end.ifname) || end.ifname === 'lo') {
        throw new Error(`${spec.kind}: bad interface name ${JSON.stringify(end.ifname)} (1-15 characters)`);
      }
      if (names.has(end.ifname)) throw new Error(`${spec.kind}: ${end.host} has two interfaces ${end.ifname}`);
      names.add(end.ifname);
      if (end.master !== undefined && !(spec.hosts[end.host].bridges ?? []).includes(end.master)) {
        throw new Error(`${spec.kind}: ${end.host} ${end.ifname}: no bridge ${end.master} on that host`);
      }
    }
  }
}

/** Shell loop that writes pairs of (path under /proc/sys, value): one process per namespace. */
const SYSCTL_SCRIPT = 'while [ $# -gt 0 ]; do printf "%s\\n" "$2" > "/proc/sys/$1" || exit 1; shift 2; done';

/**
 * Builds any topology from a spec. The named builders below are specs plus this. On any
 * failure every namespace created so far is deleted before the error is rethrown.
 */
export async function buildTopology<H extends string>(spec: TopologySpec<H>): Promise<Topology<H>> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw Object.assign(new Error(`building the ${spec.kind} topology needs root (CAP_NET_ADMIN to create network namespaces)`), {
      code: 'EPERM',
      capability: 'CAP_NET_ADMIN',
    });
  }
  validate(spec);
  const s = state();
  await sweepOwnPrefix(s);
  const prefix = `${namespacePrefix()}${s.counter++}-`;
  const hostNames = Object.keys(spec.hosts) as H[];
  const started = performance.now();

  // Plan: namespace names, ifindexes, per-host interface tables.
  let nextIndex = FIRST_IFINDEX;
  const netns = new Map<H, string>(hostNames.map((h) => [h, `${prefix}${h}`]));
  const interfaces = new Map<H, Record<string, InterfaceInfo>>(hostNames.map((h) => [h, {}]));
  for (const h of hostNames) {
    for (const br of spec.hosts[h].bridges ?? []) {
      interfaces.get(h)![br] = { name: br, index: nextIndex++, kind: 'bridge', addresses: [] };
    }
  }
  const linkLines: string[] = [];
  for (const [a, b] of spec.links) {
    const ia = nextIndex++;
    const ib = nextIndex++;
    for (const [end, index, other] of [
      [a, ia, b],
      [b, ib, a],
    ] as const) {
      interfaces.get(end.host)![end.ifname] = {
        name: end.ifname,
        index,
        kind: 'veth',
        addresses: [...(end.addresses ?? [])],
        ...(end.linkLocal !== undefined ? { linkLocal: end.linkLocal } : {}),
        peer: { host: other.host, ifname: other.ifname },
        ...(end.master !== undefined ? { master: end.master } : {}),
      };
    }
    linkLines.push(
      `link add ${a.ifname} index ${ia} netns ${netns.get(a.host)} type veth ` +
        `peer name ${b.ifname} index ${ib} netns ${netns.get(b.host)}`,
    );
  }

  const hosts = {} as Record<H, HostInfo>;
  for (const h of hostNames) hosts[h] = { name: h, netns: netns.get(h)!, interfaces: interfaces.get(h)! };
  const topo = new Topology<H>(spec.kind, prefix, hosts);

  // Registered before creation, so a failure halfway still cleans up.
  for (const n of netns.values()) s.live.add(n);
  try {
    // 1. All namespaces, one process.
    await run(['ip', '-batch', '-'], { input: [...netns.values()].map((n) => `netns add ${n}\n`).join('') });

    // 2. sysctls, one process per namespace, in parallel; before links so that new
    //    interfaces inherit the "default" values.
    await Promise.all(
      hostNames.map((h) => {
        const pairs = Object.entries({ ...BASE_SYSCTL, ...spec.hosts[h].sysctl }).flatMap(([k, v]) => [
          k.replace(/\./g, '/'),
          v,
        ]);
        return run(['ip', 'netns', 'exec', netns.get(h)!, 'sh', '-c', SYSCTL_SCRIPT, 'sh', ...pairs]);
      }),
    );

    // 3. All veth pairs, each end born in its namespace, one process.
    if (linkLines.length > 0) await run(['ip', '-batch', '-'], { input: linkLines.map((l) => `${l}\n`).join('') });

    // 4. Addresses, bridges, link up and routes: one batch per namespace, in parallel.
    await Promise.all(
      hostNames.map((h) => run(['ip', '-n', netns.get(h)!, '-batch', '-'], { input: hostScript(spec, h, hosts[h]) })),
    );

    // 5. Wait until every veth reports UP. A datagram sent in the first milliseconds can
    // otherwise be lost (seen as a missing first datagram on a bridge about one build in
    // fifteen): the link watcher may not yet have activated the device. `ip link` is
    // answered under RTNL, so once it says UP that work is done.
    await linksUp(topo, hostNames, netns);
  } catch (error) {
    try {
      topo.destroySync();
    } catch {
      /* the build error is the one worth reporting */
    }
    throw error;
  }
  topo.buildMs = performance.now() - started;
  return topo;
}

async function linksUp<H extends string>(topo: Topology<H>, hostNames: readonly H[], netns: ReadonlyMap<H, string>): Promise<void> {
  let down: string[] = [];
  for (let attempt = 0; attempt < 200; attempt++) {
    const states = await Promise.all(
      hostNames.map(async (h) => {
        const { stdout } = await run(['ip', '-n', netns.get(h)!, '-j', 'link', 'show', 'type', 'veth']);
        return (JSON.parse(stdout) as Array<{ ifname: string; operstate: string }>).filter((l) => l.operstate !== 'UP').map((l) => `${h}/${l.ifname}`);
      }),
    );
    down = states.flat();
    if (down.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${topo.kind}: links still not up after 2 s: ${down.join(', ')}`);
}

function hostScript<H extends string>(spec: TopologySpec<H>, h: H, info: HostInfo): string {
  const lines = ['link set lo up'];
  for (const iface of Object.values(info.interfaces)) {
    if (iface.kind !== 'bridge') continue;
    // A test switch should behave like a hub for multicast (no querier exists, and tests
    // must not depend on snooping state) and forward at once (STP is off anyway).
    lines.push(`link add ${iface.name} index ${iface.index} type bridge mcast_snooping 0 forward_delay 0`);
    lines.push(`link set ${iface.name} up`);
  }
  for (const iface of Object.values(info.interfaces)) {
    if (iface.kind !== 'veth') continue;
    if (iface.linkLocal !== undefined) {
      // Before "up", or the kernel adds its own EUI-64 link-local next to ours.
      lines.push(`link set ${iface.name} addrgenmode none`);
      lines.push(`addr add ${iface.linkLocal}/64 dev ${iface.name} nodad`);
    }
    for (const addr of iface.addresses) {
      lines.push(
        addr.includes(':')
          ? `addr add ${addr} dev ${iface.name} nodad`
          : `addr add ${addr} broadcast + dev ${iface.name}`,
      );
    }
    if (iface.master !== undefined) lines.push(`link set ${iface.name} master ${iface.master}`);
    lines.push(`link set ${iface.name} up`);
  }
  lines.push(...(spec.hosts[h].commands ?? []));
  return lines.map((l) => `${l}\n`).join('');
}

// ---------------------------------------------------------------------------------------
// Named topologies

/** sysctls of a router. */
const ROUTER_SYSCTL = { 'net.ipv6.conf.all.forwarding': '1', 'net.ipv4.ip_forward': '1' } as const;

/** IPv4 multicast needs a route when no interface is named (see the module comment). */
const V4_MULTICAST_ROUTE = 'route add 224.0.0.0/4 dev eth0';

/**
 * Two hosts on one link.
 * a eth0: 2001:db8:1::1/64, fe80::1, 192.0.2.1/24
 * b eth0: 2001:db8:1::2/64, fe80::2, 192.0.2.2/24
 * Both have `224.0.0.0/4 dev eth0`.
 */
export function hostPair(): Promise<Topology<'a' | 'b'>> {
  return buildTopology<'a' | 'b'>({
    kind: 'hostPair',
    hosts: { a: { commands: [V4_MULTICAST_ROUTE] }, b: { commands: [V4_MULTICAST_ROUTE] } },
    links: [
      [
        { host: 'a', ifname: 'eth0', addresses: ['2001:db8:1::1/64', '192.0.2.1/24'], linkLocal: 'fe80::1' },
        { host: 'b', ifname: 'eth0', addresses: ['2001:db8:1::2/64', '192.0.2.2/24'], linkLocal: 'fe80::2' },
      ],
    ],
  });
}

/**
 * sender - router - receiver, forwarding on in the router (IPv6 and IPv4).
 * sender eth0 2001:db8:1::1/64 192.0.2.1/26  <->  router eth0 2001:db8:1::2/64 192.0.2.2/26
 * router eth1 2001:db8:2::1/64 192.0.2.65/26 <->  receiver eth0 2001:db8:2::2/64 192.0.2.66/26
 * Link-locals follow the interface id of the global address (fe80::1, fe80::2 on each link).
 * sender and receiver route everything (::/0, 0.0.0.0/0) via the router, so any destination
 * a test invents (an anycast address the router joins, 2001:db8:3::1) reaches the router.
 */
export function chain(): Promise<Topology<'sender' | 'router' | 'receiver'>> {
  return buildTopology<'sender' | 'router' | 'receiver'>({
    kind: 'chain',
    hosts: {
      sender: {
        commands: ['route add ::/0 via 2001:db8:1::2', 'route add 0.0.0.0/0 via 192.0.2.2', V4_MULTICAST_ROUTE],
      },
      router: { sysctl: ROUTER_SYSCTL },
      receiver: {
        commands: ['route add ::/0 via 2001:db8:2::1', 'route add 0.0.0.0/0 via 192.0.2.65', V4_MULTICAST_ROUTE],
      },
    },
    links: [
      [
        { host: 'sender', ifname: 'eth0', addresses: ['2001:db8:1::1/64', '192.0.2.1/26'], linkLocal: 'fe80::1' },
        { host: 'router', ifname: 'eth0', addresses: ['2001:db8:1::2/64', '192.0.2.2/26'], linkLocal: 'fe80::2' },
      ],
      [
        { host: 'router', ifname: 'eth1', addresses: ['2001:db8:2::1/64', '192.0.2.65/26'], linkLocal: 'fe80::1' },
        { host: 'receiver', ifname: 'eth0', addresses: ['2001:db8:2::2/64', '192.0.2.66/26'], linkLocal: 'fe80::2' },
      ],
    ],
  });
}

/** Host names of star(n). */
export type StarHost = 'hub' | `peer${number}`;

/**
 * A hub with n links: hub eth<i> <-> peer<i> eth0, for i in 0..n-1 (1 <= n <= 64).
 * hub eth<i>: 2001:db8:<i+1>::1/64, fe80::1, 198.18.<i>.1/24 (RFC 2544 benchmarking range)
 * peer<i> eth0: 2001:db8:<i+1>::2/64, fe80::2, 198.18.<i>.2/24, plus `224.0.0.0/4 dev eth0`.
 * (<i+1> is written as a hex group, so peer9 is on 2001:db8:10::/64.)
 * The hub does not forward; it is the host to test "which interface did it arrive on".
 */
export async function star(n: number): Promise<Topology<StarHost>> {
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError(`star(n): n must be an integer 1..64, got ${n}`);
  const hosts: Record<string, HostSpec> = { hub: {} };
  const links: Array<readonly [EndSpec<StarHost>, EndSpec<StarHost>]> = [];
  for (let i = 0; i < n; i++) {
    const peer: StarHost = `peer${i}`;
    hosts[peer] = { commands: [V4_MULTICAST_ROUTE] };
    links.push([
      { host: 'hub', ifname: `eth${i}`, addresses: [`2001:db8:${i + 1}::1/64`, `198.18.${i}.1/24`], linkLocal: 'fe80::1' },
      { host: peer, ifname: 'eth0', addresses: [`2001:db8:${i + 1}::2/64`, `198.18.${i}.2/24`], linkLocal: 'fe80::2' },
    ]);
  }
  return buildTopology<StarHost>({ kind: `star(${n})`, hosts: hosts as Record<StarHost, HostSpec>, links });
}

/**
 * Several hosts on one Ethernet segment: each host's eth0 is a port (p0, p1, ...) of bridge
 * br0 in an extra namespace `switch`. Bridges do work in namespaces on these machines (dummy
 * and vrf links do not). Snooping is off, so multicast is flooded to every port.
 * Host i (0-based, in the given order): 2001:db8:1::<i+1>/64, fe80::<i+1>, 192.0.2.<i+1>/24,
 * plus `224.0.0.0/4 dev eth0`. The switch has IPv6 disabled so it never speaks on the wire.
 */
export async function lan<N extends string>(names: readonly N[]): Promise<Topology<N | 'switch'>> {
  if (names.length < 2 || names.length > 64) throw new RangeError(`lan(): 2..64 hosts, got ${names.length}`);
  if (new Set(names).size !== names.length) throw new Error(`lan(): duplicate host names in ${names.join(', ')}`);
  if ((names as readonly string[]).includes('switch')) throw new Error('lan(): "switch" is the bridge host');
  type L = N | 'switch';
  const hosts = {
    switch: {
      sysctl: { 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' },
      bridges: ['br0'],
    },
  } as Record<L, HostSpec>;
  const links: Array<readonly [EndSpec<L>, EndSpec<L>]> = [];
  names.forEach((name, i) => {
    const id = (i + 1).toString(16);
    hosts[name] = { commands: [V4_MULTICAST_ROUTE] };
    links.push([
      { host: name, ifname: 'eth0', addresses: [`2001:db8:1::${id}/64`, `192.0.2.${i + 1}/24`], linkLocal: `fe80::${id}` },
      { host: 'switch', ifname: `p${i}`, master: 'br0' },
    ]);
  });
  return buildTopology<L>({ kind: `lan(${names.join(',')})`, hosts, links });
}

// ---------------------------------------------------------------------------------------
// Scoped use

/** Builds a topology, runs fn with it, and destroys it whether fn resolves or throws. */
export async function withTopology<H extends string, R>(
  factory: () => Promise<Topology<H>>,
  fn: (topo: Topology<H>) => Promise<R> | R,
): Promise<R> {
  const topo = await factory();
  try {
    return await fn(topo);
  } finally {
    await topo.destroy();
  }
}

// ---------------------------------------------------------------------------------------
// Watching daemons

/**
 * A child process whose output is collected as it comes, with bounded waits for lines and
 * a bounded stop: how tests and the demo drive example daemons.
 */
export class Watched {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Resolves with the first match of `re` in stdout (or stderr); rejects after `ms`. */
  async waitFor(re: RegExp, ms = 8000, stream: 'stdout' | 'stderr' = 'stdout'): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this[stream].match(re);
      if (m) return m;
      if (Date.now() >= deadline) {
        throw new Error(`no ${stream} line matching ${re} within ${ms} ms\nstdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null if killed). */
  async stop(graceMs = 5000): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
