// The one shape of a system error, whoever builds it: `<syscall> <option?> <CODE>:
// <description> (<where>)[; needs <capability>][; <hint>]`, with Node's own properties
// (code, errno, syscall) and the context as properties. No kernel needed: the errors are
// built from errno numbers and names, as a send result or a lookup gives them.
import * as os from 'node:os';
import { interfaceLabel, interfaceRemovedError, noSuchInterface, systemError, withContext } from '../../lib/errors';

describe('systemError(): the builder', () => {
  test('a negative errno (a send result) keeps its description and says where', () => {
    const err = systemError(-os.constants.errno.ENETUNREACH, 'sendmsg', { address: '2001:db8::1', port: 9, netns: 'blue' });
    expect(err).toBeInstanceOf(Error);
    expect(err).toMatchObject({ code: 'ENETUNREACH', errno: -os.constants.errno.ENETUNREACH, syscall: 'sendmsg', address: '2001:db8::1', port: 9, netns: 'blue' });
    expect(err.message).toBe('sendmsg ENETUNREACH: network is unreachable ([2001:db8::1]:9, netns blue)');
    // The stack says what the message says, not a provisional text.
    expect(err.stack?.split('\n')[0]).toBe(`Error: ${err.message}`);
  });

  test('an errno name works as well, and an own description replaces the system text', () => {
    const err = systemError('ENODEV', 'if_nametoindex', { interface: 'eth9' }, "no such interface 'eth9'");
    expect(err).toMatchObject({ code: 'ENODEV', errno: -os.constants.errno.ENODEV, syscall: 'if_nametoindex', interface: 'eth9' });
    expect(err.message).toBe("if_nametoindex ENODEV: no such interface 'eth9' (interface eth9)");
  });

  test('option, capability and hint take their places; hints pick by code', () => {
    const perm = systemError('EPERM', 'setsockopt', { option: 'IPV6_JOIN_ANYCAST', address: '2001:db8::99', interface: 'eth0 (2)', hint: 'ask for it' });
    expect(perm.message).toBe('setsockopt IPV6_JOIN_ANYCAST EPERM: operation not permitted (2001:db8::99, interface eth0 (2)); needs CAP_NET_ADMIN; ask for it');
    expect(perm.capability).toBe('CAP_NET_ADMIN');
    const busy = systemError('EADDRINUSE', 'bind', { address: '::', port: 7, hints: { EADDRINUSE: 'set reuseAddr', EINVAL: 'not this one' } });
    expect(busy.message).toBe('bind EADDRINUSE: address already in use ([::]:7); set reuseAddr');
  });

  test('more context later (a socket adding its netns) keeps what the first context said', () => {
    const err = systemError('ENOBUFS', 'setsockopt', { option: 'MCAST_JOIN_GROUP', address: 'ff02::13', interface: 'eth0 (2)', hint: 'too many groups' });
    withContext(err, { netns: 'red' });
    expect(err.message).toBe('setsockopt MCAST_JOIN_GROUP ENOBUFS: no buffer space available (ff02::13, interface eth0 (2), netns red); too many groups');
    expect(err).toMatchObject({ option: 'MCAST_JOIN_GROUP', netns: 'red' });
  });
});

describe('withContext(): errors from elsewhere get the same shape', () => {
  test("the addon's error (with its description) and Node's fs error (without one)", () => {
    const native = Object.assign(new Error('setsockopt EPERM: operation not permitted'), { code: 'EPERM', errno: -1, syscall: 'setsockopt', description: 'operation not permitted' });
    expect((withContext(native, { option: 'IPV6_FREEBIND' }) as Error).message).toBe('setsockopt IPV6_FREEBIND EPERM: operation not permitted; needs CAP_NET_ADMIN');
    const fsError = Object.assign(new Error("ENOENT: no such file or directory, open '/run/netns/x'"), { code: 'ENOENT', errno: -2, syscall: 'open' });
    expect((withContext(fsError, { netns: 'x', hint: 'there is no network namespace x' }) as Error).message).toBe(
      'open ENOENT: no such file or directory (netns x); there is no network namespace x',
    );
  });

  test('an error without code and syscall passes through untouched', () => {
    const plain = new TypeError('nope');
    expect(withContext(plain, { netns: 'x' })).toBe(plain);
    expect(plain.message).toBe('nope');
    expect(withContext('text', { netns: 'x' })).toBe('text');
  });
});

describe('the errors about interfaces', () => {
  test('noSuchInterface by name and by index', () => {
    expect(noSuchInterface('eth9', 'blue')).toMatchObject({
      code: 'ENODEV',
      errno: -os.constants.errno.ENODEV,
      syscall: 'if_nametoindex',
      interface: 'eth9',
      netns: 'blue',
      message: "if_nametoindex ENODEV: no such interface 'eth9' (interface eth9, netns blue)",
    });
    expect(noSuchInterface(4242)).toMatchObject({ syscall: 'if_indextoname', interface: 4242, message: 'if_indextoname ENODEV: no such interface with index 4242 (interface 4242)' });
  });

  test('interfaceRemovedError names the interface one way, says what ended, and is ENODEV from RTM_DELLINK', () => {
    const err = interfaceRemovedError({ index: 60, name: 'm1' }, 'blue', 'the socket is bound to it');
    expect(interfaceLabel({ index: 60, name: 'm1' })).toBe('m1 (60)');
    expect(err).toMatchObject({ code: 'ENODEV', errno: -os.constants.errno.ENODEV, syscall: 'RTM_DELLINK', interface: 'm1 (60)', netns: 'blue' });
    expect(err.message).toBe('RTM_DELLINK ENODEV: interface m1 (60) was removed from netns blue: the socket is bound to it (interface m1 (60), netns blue)');
    expect(interfaceRemovedError({ index: 3, name: 'eth1' }, undefined, 'gone').message).toBe('RTM_DELLINK ENODEV: interface eth1 (3) was removed: gone (interface eth1 (3))');
  });
});
