// Smoke test of an installed ip6sock package, run by scripts/pack-smoke.sh from inside a
// consumer project that installed the packed tarball. Opens a UdpSocket on [::1], sends a
// datagram to itself, checks the bytes that arrive, closes, and checks which addon file
// the process actually mapped: it must be the prebuild for this CPU, not a local build.
// Prints one JSON line; exits non-zero on any failure.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { UdpSocket } = require('ip6sock');

const expectDir = `prebuilds/linux-${process.arch}/`;

function loadedAddon() {
  const maps = fs.readFileSync('/proc/self/maps', 'utf8').split('\n');
  const hit = maps.map((l) => l.slice(l.indexOf('/'))).find((p) => /ip6sock[^/]*\.node$/.test(p));
  if (!hit) throw new Error('no ip6sock addon is mapped into the process');
  return hit;
}

async function main() {
  const payload = Buffer.from(`ip6sock smoke ${process.version} ${process.arch} \u00e9\u0000\xff`, 'utf8');
  const sock = new UdpSocket({ address: '::1', port: 0 });
  try {
    const { port } = sock.address();
    const received = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no datagram within 5 s')), 5000);
      sock.once('message', (data, info) => {
        clearTimeout(timer);
        // data may be a view of a pooled buffer: copy before the callback returns.
        resolve({ data: Buffer.from(data), info });
      });
      sock.once('error', reject);
    });
    const sent = await sock.send(payload, { address: '::1', port });
    if (sent !== payload.length) throw new Error(`send reported ${sent} bytes, expected ${payload.length}`);
    const { data, info } = await received;
    if (!data.equals(payload)) throw new Error(`received ${data.toString('hex')}, sent ${payload.toString('hex')}`);
    if (info.port !== port || !/^::1(%|$)/.test(info.address)) {
      throw new Error(`datagram came from [${info.address}]:${info.port}, expected [::1]:${port}`);
    }
  } finally {
    await sock.close();
  }
  const addon = loadedAddon();
  const pkgDir = path.dirname(require.resolve('ip6sock/package.json'));
  if (!addon.startsWith(path.join(fs.realpathSync(pkgDir), expectDir))) {
    throw new Error(`loaded ${addon}, expected a file under ${expectDir} of the installed package`);
  }
  if (fs.existsSync(path.join(pkgDir, 'build'))) throw new Error('the installed package has a build/ directory: it compiled');
  console.log(JSON.stringify({ ok: true, node: process.version, arch: process.arch, napi: process.versions.napi, bytes: payload.length, addon: path.relative(pkgDir, addon) }));
}

main().catch((err) => {
  console.log(JSON.stringify({ ok: false, node: process.version, arch: process.arch, error: String(err && err.stack || err) }));
  process.exit(1);
});
