/**
 * ICMP Time Exceeded (hop limit exceeded in transit, code 0) from a router-alert tap to the
 * source of a packet it would have forwarded with hop limit (TTL) 0: what the kernel's
 * forwarding path would have sent, had the tap not taken the packet. Rate-limited, and never
 * sent where the rules forbid it.
 * @packageDocumentation
 */
import { withContext, type ErrorContext } from '../../errors';
import { internetChecksum } from '../../codec/packet';
import { sourceFor } from '../../links/interfaces';
import type { Family } from '../../validate';
import { RawSocket } from '../raw';
import type { Ipv4RouterAlertPacket, RouterAlertPacket } from './types';

/** IPv6 minimum MTU (RFC 8200 §5): an ICMPv6 error must fit in it (RFC 4443 §2.4(c)). */
const IPV6_MIN_MTU = 1280;

/** RFC 1812 §4.3.2.3: an ICMPv4 error carries as much as fits in 576 bytes. */
const IPV4_ICMP_ERROR_MAX = 576;

/** ICMPv4 error types (RFC 792, RFC 1812): no error is sent about one of these. */
const ICMPV4_ERRORS: readonly number[] = [3, 4, 5, 11, 12];

/** Allows `burst` events at once and `perSecond` on average (RFC 4443 §2.4(f) rate limit). */
class TokenBucket {
  private tokens: number;
  private last = Date.now();
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.perSecond) / 1000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

/** RFC 4443 §2.4(e) / RFC 1812 §4.3.2.7: addresses an ICMP error must never be sent to. */
function mayReportTo(source: string, family: Family): boolean {
  if (family === 6) return source !== '::' && !/^ff/i.test(source);
  const first = Number(source.split('.')[0]);
  return source !== '0.0.0.0' && first !== 127 && first < 224;
}

function isLinkLocal6(address: string): boolean {
  return /^fe[89ab]/i.test(address);
}

/** Never an error about an error (RFC 4443 §2.4(e), RFC 1812 §4.3.2.7). */
function isIcmpError(pkt: RouterAlertPacket | Ipv4RouterAlertPacket): boolean {
  if (pkt.family === 6) return pkt.protocol === 58 && pkt.icmpv6 !== undefined && pkt.icmpv6.type < 128;
  return pkt.header.protocol === 1 && ICMPV4_ERRORS.includes(pkt.payload[0]);
}

/** The Time Exceeded messages of one tap: its own raw ICMP socket, opened on first use, and rate limit. */
export class TimeExceededSender {
  private socket: RawSocket | undefined;
  private readonly limit = new TokenBucket(1000, 50);

  constructor(
    private readonly family: Family,
    private readonly netns: string | undefined,
  ) {}

  /**
   * Sends Time Exceeded about `pkt` to its source. Resolves false when the rules forbid one
   * (source unspecified, multicast or loopback, the packet itself an ICMP error) or the rate
   * limit was reached, true once sent; rejects with the system error of a failed send.
   */
  async send(pkt: RouterAlertPacket | Ipv4RouterAlertPacket): Promise<boolean> {
    const source = pkt.header.source;
    if (!mayReportTo(source, this.family) || isIcmpError(pkt) || !this.limit.take()) return false;

    let message: Buffer;
    let address = source;
    if (pkt.family === 6) {
      // type 3, code 0, checksum (the kernel fills it in on raw ICMPv6), 4 unused bytes,
      // then as much of the invoking packet as keeps the whole message within 1280 bytes.
      const room = IPV6_MIN_MTU - 40 - 8;
      message = Buffer.alloc(8 + Math.min(room, pkt.bytes.length));
      message[0] = 3;
      pkt.bytes.copy(message, 8, 0, room);
      if (isLinkLocal6(source) && pkt.interface !== null) address = `${source}%${pkt.interface.index}`;
    } else {
      // type 11, code 0, checksum, 4 unused bytes, then the invoking datagram within 576
      // bytes. Raw ICMPv4 gets no kernel checksum: computed here.
      const room = IPV4_ICMP_ERROR_MAX - 20 - 8;
      message = Buffer.alloc(8 + Math.min(room, pkt.bytes.length));
      message[0] = 11;
      pkt.bytes.copy(message, 8, 0, room);
      message.writeUInt16BE(internetChecksum([message]), 2);
    }
    const context: ErrorContext = { address, netns: this.netns, hint: 'sending ICMP Time Exceeded to the source' };
    let from: string;
    try {
      // The address this router would use to reach the source: the one on the link the
      // packet came in on, as RFC 4443 §2.2 asks for errors about packets not sent to us.
      from = sourceFor(address, { netns: this.netns });
    } catch (err) {
      throw withContext(err, context);
    }
    await this.open()
      .send(message, { address, source: from })
      .catch((err: unknown) => {
        throw withContext(err, context);
      });
    return true;
  }

  /** Closes the raw socket, if it was opened. */
  close(): void {
    const socket = this.socket;
    this.socket = undefined;
    if (socket !== undefined) void socket.close();
  }

  /** The raw ICMP socket errors leave from, opened on first use in the tap's namespace. */
  private open(): RawSocket {
    this.socket ??=
      this.family === 6
        ? // Send-only: the filter blocks every type, so nothing queues up in it.
          new RawSocket({ family: 6, protocol: 58, netns: this.netns, icmpFilter: { pass: [] } })
        : // IPv4 raw ICMP has no filter constant here; the smallest buffer bounds what queues.
          new RawSocket({ family: 4, protocol: 1, netns: this.netns, receiveBufferSize: 1 });
    return this.socket;
  }
}
