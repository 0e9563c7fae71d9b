/**
 * The IPv6 extension headers (RFC 8200 §4, and the IANA list of headers that continue the
 * chain) and a walk over the TLV options of a hop-by-hop or destination options header:
 * the one list and the one walk that packet parsing and the router-alert tap share, so a
 * header the parser treats as an extension header is one the tap's fast path steps around.
 * Pure functions; nothing here allocates.
 * @packageDocumentation
 */

/** Names of the extension headers, by next-header value: every header after which the chain continues. */
const EXTENSION_HEADER_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'hop-by-hop options',
  43: 'routing',
  44: 'fragment',
  51: 'authentication',
  60: 'destination options',
  135: 'mobility',
  139: 'HIP',
  140: 'shim6',
});

/** 1 at each extension header's next-header value: a lookup as cheap as a comparison, on every tapped packet. */
const IS_EXTENSION = new Uint8Array(256);
for (const type of Object.keys(EXTENSION_HEADER_NAMES)) IS_EXTENSION[Number(type)] = 1;

/** True for a next-header value that is an extension header (the chain goes on after it). */
export function isExtensionHeader(nextHeader: number): boolean {
  return IS_EXTENSION[nextHeader] === 1;
}

/** The name of an extension header for messages ('routing'), or `protocol N` for anything else. */
export function extensionHeaderName(nextHeader: number): string {
  return EXTENSION_HEADER_NAMES[nextHeader] ?? `protocol ${nextHeader}`;
}

/**
 * The length in bytes of the extension header of `type` whose hdr-ext-len byte is
 * `lengthByte`: 8 for a fragment header (it has none), (n + 2) * 4 for AH (RFC 4302 §2.2),
 * (n + 1) * 8 for the others (RFC 8200 §4).
 */
export function extensionHeaderLength(type: number, lengthByte: number): number {
  if (type === 44) return 8;
  return type === 51 ? (lengthByte + 2) * 4 : (lengthByte + 1) * 8;
}

/**
 * One step of the options walk of a hop-by-hop or destination options header: the offset
 * just after the option that starts at b[at], or -1 when that option runs past `end` (a
 * missing length byte, or data beyond the header). Pad1 is the one option without a length
 * byte. The walk starts at the header's offset + 2 and ends at its offset + its length:
 *
 * ```ts
 * for (let at = start + 2; at < end; ) {
 *   const next = nextOption(b, at, end);
 *   if (next < 0) break; // malformed
 *   // b[at] is the type; b[at + 1] the data length; data at b[at + 2 .. next)
 *   at = next;
 * }
 * ```
 */
export function nextOption(b: Uint8Array, at: number, end: number): number {
  if (b[at] === 0) return at + 1;
  if (at + 1 >= end) return -1;
  const next = at + 2 + b[at + 1];
  return next > end ? -1 : next;
}

/** RFC 2711: the Router Alert option is type 5 with exactly 2 bytes of data (Linux drops any other length). */
export function isRouterAlertAt(b: Uint8Array, at: number, next: number): boolean {
  return b[at] === 5 && next - at === 4;
}
