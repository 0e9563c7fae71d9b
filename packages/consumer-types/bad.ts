// Consumer fixture: every line marked `// error TSnnnn` must fail with that code, and
// nothing else may fail (test/tooling/types.test.ts checks both).
import { AnycastGroup, connectTcp, interfaces, MulticastSocket, RawSocket, RouterAlertSocket, UdpSocket } from 'ip6sock';

const udp = new UdpSocket();
udp.on('message', (data: string) => void data); // error TS2345
udp.on('message', (data, info: string) => void [data, info]); // error TS2345
udp.on('mesage', () => {}); // error TS2345
udp.once('close', (reason: string) => void reason); // error TS2345
udp.emit('message', Buffer.alloc(1)); // error TS2554
udp.on('membership', () => {}); // error TS2345
new UdpSocket({ port: '53' }); // error TS2322
new UdpSocket({ reuseAdress: true }); // error TS2561
new UdpSocket({ unicastHopLimit: 1 }); // error TS2353

const raw = new RawSocket({ protocol: 58 });
raw.on('message', (data, info) => void info.reply); // error TS2339
raw.on('packet', () => {}); // error TS2345
new RawSocket({ protocol: 58, icmpFilter: { pass: ['no-such-type'] } }); // error TS2322

const mc = new MulticastSocket({ multicastLoopback: 'no' }); // error TS2322
new MulticastSocket({ loopback: false }); // error TS2353
mc.setLoopback(true); // error TS2339
mc.block('ff02::13', '2001:db8::66', { interface: 1 }); // error TS2554
void mc.dropped; // error TS2339
mc.on('membership', (event: number) => void event); // error TS2345
mc.on('membership', (event) => void event.groups); // error TS2551

const ra = new RouterAlertSocket({ value: 0 });
ra.on('packet', (packet) => void packet.header.ttl); // error TS2339
ra.on('message', () => {}); // error TS2345
ra.emit('packet'); // error TS2554

const group = new AnycastGroup('2001:db8::99', { interface: 'eth0', port: 53 });
group.on('message', (data, info, reply: (n: number) => void) => void [data, info, reply]); // error TS2345
group.on('batch', () => {}); // error TS2345
void group.port; // error TS2341
void connectTcp({ address: '::1', port: 1 }).write('x'); // error TS2339
new AnycastGroup('2001:db8::99', { interface: true, port: 53 }); // error TS2322

const watcher = interfaces.watch();
watcher.on('link', (event) => void event.address); // error TS2339
watcher.on('resync', (n: number) => void n); // error TS2345

const sockets: Array<UdpSocket | RawSocket> = [udp, raw];
for (const s of sockets) s.on('batch', (b) => void b.nope); // error TS2339
