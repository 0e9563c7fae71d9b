// Consumer fixture: must compile with zero errors against the published declarations.
import { EventEmitter, once as onceEvent } from 'node:events';
import {
  AnycastGroup,
  connectTcp,
  createTcpServer,
  interfaces,
  MulticastSocket,
  RawSocket,
  RouterAlertSocket,
  UdpSocket,
  type AnycastMessageInfo,
  type AnycastReply,
  type Membership,
  type MulticastSocketStats,
  type InterfaceEvent,
  type Listener,
  type Message,
  type MessageBatch,
  type MessageInfo,
  type MembershipEvent,
  type RouterAlertPacket,
  type Ipv4RouterAlertPacket,
  type UdpSocketEvents,
} from 'ip6sock';

export async function useEverything(): Promise<void> {
  const udp = new UdpSocket({ family: 6, port: 0, reuseAddr: true });
  udp
    .on('message', (data, info) => {
      const d: Buffer = data;
      const i: MessageInfo = info;
      void [d.length, i.address, i.interface?.name, i.hopLimit];
    })
    .once('batch', (batch) => {
      const b: MessageBatch = batch;
      for (let n = 0; n < b.length; n++) void b.size(n);
    })
    .on('drain', () => {})
    .on('warning', (w) => void w.message)
    .on('error', (err) => void err.message)
    .prependListener('close', () => {})
    .prependOnceListener('message', (data) => void data.byteLength)
    .addListener('newListener', (event, listener) => void [event, listener]);
  const onMessage: Listener<UdpSocket, 'message'> = (data, info) => void [data, info.port];
  udp.on('message', onMessage).off('message', onMessage).removeListener('message', onMessage);
  udp.emit('message', Buffer.alloc(1), {} as MessageInfo);
  const listeners: Array<Listener<UdpSocket, 'message'>> = udp.listeners('message');
  void listeners;
  await new Promise((resolve) => udp.once('close', resolve));
  for await (const { data, info } of udp) void [data.length, info.destination];
  const args: UdpSocketEvents['message'] = [Buffer.alloc(0), {} as MessageInfo];
  void args;

  const mc = new MulticastSocket({ port: 7017, multicastLoopback: false, multicastHopLimit: 1, multicastInterface: 'eth0', hopLimit: 64 });
  const joined: Membership[] = mc.join('ff02::13', { interface: 'all' });
  void joined;
  mc.block('ff02::13', { interface: 'eth0', source: '2001:db8::66' });
  mc.unblock('ff02::13', { interface: 'eth0', source: '2001:db8::66' });
  mc.setHopLimit(64);
  mc.setMulticastHopLimit(2);
  mc.setMulticastLoopback(true);
  mc.setMulticastInterface(null);
  const hops: number[] = [mc.getHopLimit(), mc.getMulticastHopLimit()];
  const looped: boolean = mc.getMulticastLoopback();
  void [hops, looped];
  const mcStats: MulticastSocketStats = mc.stats;
  void [mcStats.received, mcStats.notJoined, mcStats.own];
  const family: 4 | 6 = mc.address().family;
  void family;
  mc.on('membership', (event) => {
    const e: MembershipEvent = event;
    void [e.type, e.group, e.interface.index, e.reason];
  });
  mc.on('message', (data, info) => void [data, info.interface]);
  const asUdp: UdpSocket = mc;
  asUdp.on('message', (data) => void data);
  for await (const m of mc) {
    const msg: Message = m;
    void msg;
  }

  const raw = new RawSocket({ protocol: 58, icmpFilter: { pass: ['echo-request'] }, hopLimit: 255 });
  const rawJoined: Membership[] = raw.join('ff02::16', { interface: 'eth0' });
  void rawJoined;
  raw.setHopLimit(255);
  raw.on('message', (data, info) => void [data.readUInt8(0), info.address]);
  raw.on('batch', (batch) => void batch.length);
  for await (const { data } of raw) void data;

  const ra = new RouterAlertSocket({ value: 0 });
  ra.on('packet', (packet) => {
    const p: RouterAlertPacket = packet;
    void [p.header.hopLimit, p.routerAlert, p.interface?.name];
    void ra.forward(packet);
  });
  ra.on('warning', (w) => void w);
  for await (const packet of ra) ra.drop(packet);
  const ra4 = new RouterAlertSocket({ family: 4, protocol: 46 });
  ra4.on('packet', (packet) => {
    const p: Ipv4RouterAlertPacket = packet;
    void p.header.ttl;
  });

  const group = new AnycastGroup('2001:db8::99', { interface: 'eth0', port: 53 });
  group.on('message', (data, info) => {
    const i: AnycastMessageInfo = info;
    const r: AnycastReply = i.reply;
    void r(data, { hopLimit: 64 });
    void info.address;
  });
  group.on('warning', (w) => void w).on('error', (err) => void err).once('close', () => {});
  for await (const { data, info } of group) void info.reply(data.subarray(0, info.size));
  const served: { address: string; port: number; family: 6 } = group.address();
  void [served, group.stats.received, group.stats.ignored];
  group.setHopLimit(64);

  const server = await createTcpServer({ port: 0 });
  const conn = await connectTcp({ address: '::1', port: 7017, signal: AbortSignal.timeout(1000) });
  conn.end();
  server.close();

  const watcher = interfaces.watch();
  watcher.on('link', (event) => void [event.type, event.index, event.flags.up]);
  watcher.on('address', (event) => void [event.address, event.prefixLength]);
  watcher.on('resync', () => {}).on('close', () => {}).on('error', (err) => void err);
  for await (const event of watcher) {
    const e: InterfaceEvent = event;
    if (e.kind === 'address') void e.address;
  }

  // Unions: the events their members share.
  const sockets: Array<UdpSocket | RawSocket | MulticastSocket> = [udp, raw, mc];
  for (const s of sockets) s.on('error', (err) => void err.message).on('close', () => {});
  // Node's own helpers take them as EventEmitters.
  const emitter: EventEmitter = udp;
  void emitter;
  const [data, info] = await onceEvent(udp, 'message');
  void [data, info];

  await using disposable = new UdpSocket();
  void disposable;
  await Promise.all([udp.close(), mc.close(), raw.close(), ra.close(), ra4.close(), group.close(), watcher.close()]);
}
