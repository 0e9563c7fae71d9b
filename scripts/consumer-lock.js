// Writes package.json and package-lock.json of a consumer project that depends on a packed
// ip6sock tarball, for scripts/pack-smoke.sh. The lockfile pins ip6sock's runtime
// dependencies (and theirs) to the versions and integrities of this repository's own
// package-lock.json: `npm ci --offline` then takes every one of them from the npm cache
// that `npm ci` filled here, where `npm install --offline` would need registry metadata
// (packuments) that the cache does not hold.
//
// Usage: node scripts/consumer-lock.js TARBALL CONSUMER_DIR
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const zlib = require('node:zlib');

const [tarball, dir] = process.argv.slice(2);
if (!tarball || !dir) {
  console.error('usage: node scripts/consumer-lock.js TARBALL CONSUMER_DIR');
  process.exit(2);
}
const root = path.resolve(__dirname, '..');
const repoLock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));

// package/package.json inside the tarball: the manifest as it ships.
function packedManifest(file) {
  const tar = zlib.gunzipSync(fs.readFileSync(file));
  for (let at = 0; at + 512 <= tar.length; ) {
    const name = tar.toString('utf8', at, at + 100).replace(/\0.*$/s, '');
    const size = parseInt(tar.toString('utf8', at + 124, at + 136).replace(/\0.*$/s, '').trim() || '0', 8);
    if (name === '') break;
    if (name === 'package/package.json') return JSON.parse(tar.toString('utf8', at + 512, at + 512 + size));
    at += 512 + Math.ceil(size / 512) * 512;
  }
  throw new Error(`${file} has no package/package.json`);
}

const manifest = packedManifest(tarball);
const rel = `file:${path.relative(dir, path.resolve(tarball))}`;
const integrity = `sha512-${crypto.createHash('sha512').update(fs.readFileSync(tarball)).digest('base64')}`;

const packages = {
  '': { name: 'ip6sock-consumer', version: '1.0.0', dependencies: { [manifest.name]: rel } },
  [`node_modules/${manifest.name}`]: {
    version: manifest.version,
    resolved: rel,
    integrity,
    hasInstallScript: true,
    license: manifest.license,
    os: manifest.os,
    dependencies: manifest.dependencies,
    engines: manifest.engines,
    bin: manifest.bin,
  },
};

// Node's resolution over lockfile paths: from `from`, the nearest node_modules/NAME.
function locate(name, from) {
  for (let base = from; ; ) {
    const key = `${base ? `${base}/` : ''}node_modules/${name}`;
    if (repoLock.packages[key]) return key;
    if (!base) return null;
    const up = base.lastIndexOf('/node_modules/');
    base = up === -1 ? '' : base.slice(0, up);
  }
}

// ip6sock sits at node_modules/ip6sock in the consumer and at the root in this repository:
// its dependencies resolve from the root, and keep their paths.
const queue = Object.keys(manifest.dependencies || {}).map((name) => [name, '']);
while (queue.length) {
  const [name, from] = queue.shift();
  const key = locate(name, from);
  if (!key) throw new Error(`${name} (needed by ${from || manifest.name}) is not in package-lock.json`);
  if (packages[key]) continue;
  const entry = { ...repoLock.packages[key] };
  for (const flag of ['dev', 'devOptional', 'optional', 'peer']) delete entry[flag];
  packages[key] = entry;
  for (const dep of Object.keys(entry.dependencies || {})) queue.push([dep, key]);
}

fs.mkdirSync(dir, { recursive: true });
fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'ip6sock-consumer', version: '1.0.0', private: true, dependencies: { [manifest.name]: rel } }, null, 2)}\n`);
fs.writeFileSync(path.join(dir, 'package-lock.json'), `${JSON.stringify({ name: 'ip6sock-consumer', version: '1.0.0', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
console.log(Object.keys(packages).filter(Boolean).map((k) => `${k.slice(k.lastIndexOf('node_modules/') + 13)}@${packages[k].version}`).join(' '));
