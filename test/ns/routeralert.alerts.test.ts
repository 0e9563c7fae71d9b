// A packet with more than one Router Alert option, crafted by an independent encoder
// (scapy, run in the sender's namespace with the system python3) rather than by ip6sock's
// own: the kernel taps it for one of its values; the tapped packet must say which (the
// socket's) and list every one it carries.
import { UdpSocket } from '../../lib';
import { parseIpv4 } from '../../lib/codec/ipv4';
import { RouterAlertSocket, type RouterAlertPacket } from '../../lib/sockets/routeralert/socket';
import { describeRoot } from '../helpers/privileged';
import { chain, useTopology } from '../helpers/topology';
import { nextEvent } from '../helpers/wire';

const SENDER = '2001:db8:1::1';
const RECEIVER = '2001:db8:2::2';

/**
 * Builds IPv6 / hop-by-hop [Router Alert 0, Router Alert 5] / UDP with scapy and sends the
 * bytes whole through a raw IPPROTO_RAW socket (the kernel routes them as they are).
 * argv: source, destination, destination port. Prints the bytes sent, in hex.
 */
const SCAPY = `
import socket, sys
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, RouterAlert
from scapy.packet import Raw
src, dst, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
pkt = IPv6(src=src, dst=dst, hlim=64) / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0), RouterAlert(value=5)]) / UDP(sport=4000, dport=port) / Raw(b"two alerts")
data = bytes(pkt)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
s.sendto(data, (dst, 0))
s.close()
print(data.hex())
`;

describeRoot('a packet with two Router Alert options (values 0, then 5)', () => {
  const topo = useTopology(() => chain());

  test('the value-5 tap gets it: routerAlert is 5 (the value matched), routerAlerts lists [0, 5]', async () => {
    await using ra = new RouterAlertSocket({ value: 5, netns: topo.ns('router') });
    await using rx = new UdpSocket({ netns: topo.ns('receiver'), port: 7010 });
    const tapped = nextEvent<[RouterAlertPacket]>(ra, 'packet');
    const sent = await topo.exec('sender', ['/usr/bin/python3', '-c', SCAPY, SENDER, RECEIVER, '7010'], { timeoutMs: 20_000 });
    const [pkt] = await tapped;

    // What scapy put on the wire is what was tapped (the router had not touched it yet).
    expect(pkt.bytes.toString('hex')).toBe(sent.stdout.trim());
    expect(pkt.hopByHop?.options).toEqual([
      { type: 5, name: 'routerAlert', routerAlert: 0 },
      { type: 5, name: 'routerAlert', routerAlert: 5 },
    ]);
    // Before: routerAlert said 0, the first option, though the socket taps value 5.
    expect(pkt.routerAlert).toBe(5);
    expect(pkt.routerAlerts).toEqual([0, 5]);
    expect(Object.isFrozen(pkt.routerAlerts)).toBe(true);
    expect(JSON.parse(JSON.stringify(pkt))).toMatchObject({ routerAlert: 5, routerAlerts: [0, 5] });

    // Editing the options does not rewrite what arrived; forward() sends the packet on.
    pkt.hopByHop!.options = pkt.hopByHop!.options.slice(1);
    expect(pkt.routerAlerts).toEqual([0, 5]);
    const arrived = nextEvent<[Buffer]>(rx, 'message');
    await expect(ra.forward(pkt)).resolves.toMatchObject({ forwarded: true });
    expect((await arrived)[0].toString()).toBe('two alerts');
  }, 30_000);
});

describe('IPv4: every Router Alert option of the header', () => {
  test('two options (0 then 5): routerAlert is the first, routerAlerts lists both in wire order', () => {
    // 20 fixed bytes + RA(0) + RA(5): IHL 7; an 8-byte UDP header with no payload.
    const b = Buffer.alloc(36);
    b[0] = 0x47;
    b.writeUInt16BE(36, 2);
    b[8] = 64;
    b[9] = 17;
    Buffer.from([192, 0, 2, 1, 192, 0, 2, 66]).copy(b, 12);
    Buffer.from([0x94, 0x04, 0x00, 0x00, 0x94, 0x04, 0x00, 0x05]).copy(b, 20);
    const parsed = parseIpv4(b);
    expect(parsed.routerAlert).toBe(0);
    expect(parsed.routerAlerts).toEqual([0, 5]);
    expect(parsed.payload.length).toBe(8);
  });
});
