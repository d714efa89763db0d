/**
 * A failing disk for tests, loaded with `node --import ./test/fault-shim.mjs`:
 * after GENAUG_FAULT_AFTER bytes have been written, every further write, the
 * creation of a file or folder, and a copy fail with GENAUG_FAULT_CODE
 * (ENOSPC: "no space left on device", the default; or EACCES: "permission
 * denied"; or EROFS), as the kernel reports a full or read-only disk. The write
 * that crosses the limit writes the bytes that fit (a short write) and the
 * next one fails, so an append can leave a torn line, as a real full disk
 * does; an append that fits in the slack of the file's last 4 KiB block still
 * succeeds, as on a real file system. Removing and renaming files still work
 * (they free space or need none).
 * GENAUG_FAULT_UNDER (optional) limits the faults (and the count) to paths
 * under that folder.
 * Covers node:fs and node:fs/promises (FileHandle included) in the main thread;
 * run the command with its workers off.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { resolve } from 'node:path';

const limit = Number(process.env.GENAUG_FAULT_AFTER ?? Infinity);
const code = process.env.GENAUG_FAULT_CODE ?? 'ENOSPC';
const under = process.env.GENAUG_FAULT_UNDER ? resolve(process.env.GENAUG_FAULT_UNDER) : undefined;
const WORDS = { ENOSPC: [-28, 'no space left on device'], EACCES: [-13, 'permission denied'], EROFS: [-30, 'read-only file system'] };
const [errno, words] = WORDS[code] ?? WORDS.ENOSPC;
let written = 0;
/** Paths of the open file handles, for the `under` test. */
const handlePaths = new WeakMap();
const fdPaths = new Map();

const covered = (p) => {
  if (!under) return true;
  if (typeof p !== 'string' && !(p instanceof URL) && !Buffer.isBuffer(p)) return false;
  const abs = resolve(String(p instanceof URL ? p.pathname : p));
  return abs === under || abs.startsWith(under + '/');
};

function fault(syscall, path) {
  const e = new Error(`${code}: ${words}, ${syscall}${path ? ` '${path}'` : ''}`);
  e.code = code;
  e.errno = errno;
  e.syscall = syscall;
  if (path) e.path = String(path);
  return e;
}

/** Bytes this write may still write: all, some (the crossing write), or it fails (-1). */
function allow(n, path) {
  if (!covered(path)) return n;
  if (written >= limit) return -1;
  const ok = Math.min(n, limit - written);
  written += ok;
  return ok;
}
const exhausted = (path) => covered(path) && written >= limit;
const byteLength = (data, enc) => (typeof data === 'string' ? Buffer.byteLength(data, typeof enc === 'string' ? enc : enc?.encoding ?? 'utf8') : data.byteLength);
const asBuffer = (data, enc) => (typeof data === 'string' ? Buffer.from(data, typeof enc === 'string' ? enc : enc?.encoding ?? 'utf8') : Buffer.from(data.buffer, data.byteOffset, data.byteLength));
const writing = (flags) => typeof flags === 'string' ? /[wa+]/.test(flags) : typeof flags === 'number' && (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT)) !== 0;

// --- fs/promises -------------------------------------------------------------

const probe = await fsp.open(process.execPath, 'r');
const FH = Object.getPrototypeOf(probe);
await probe.close();

const origOpen = fsp.open;
fsp.open = async function (path, flags, mode) {
  if (writing(flags) && exhausted(path)) throw fault('open', path);
  const fh = await origOpen.call(this, path, flags, mode);
  handlePaths.set(fh, String(path));
  return fh;
};
const origFhWrite = FH.write;
FH.write = async function (buffer, offsetOrOptions, length, position) {
  const path = handlePaths.get(this);
  if (typeof buffer === 'string') {
    const b = Buffer.from(buffer, typeof length === 'string' ? length : 'utf8');
    const n = allow(b.byteLength, path);
    if (n < 0) throw fault('write', path);
    return origFhWrite.call(this, b, 0, n, typeof offsetOrOptions === 'number' ? offsetOrOptions : null);
  }
  const off = typeof offsetOrOptions === 'number' ? offsetOrOptions : offsetOrOptions?.offset ?? 0;
  const len = typeof length === 'number' ? length : typeof offsetOrOptions === 'object' && offsetOrOptions?.length !== undefined ? offsetOrOptions.length : buffer.byteLength - off;
  const pos = typeof offsetOrOptions === 'object' && offsetOrOptions !== null ? offsetOrOptions.position : position;
  const n = allow(len, path);
  if (n < 0) throw fault('write', path);
  return origFhWrite.call(this, buffer, off, n, pos);
};
const origFhWriteFile = FH.writeFile;
FH.writeFile = async function (data, options) {
  const path = handlePaths.get(this);
  const b = asBuffer(data, options);
  const n = allow(b.byteLength, path);
  if (n < 0) throw fault('write', path);
  await origFhWriteFile.call(this, b.subarray(0, n));
  if (n < b.byteLength) throw fault('write', path);
};
FH.appendFile = FH.writeFile;

/**
 * A full disk still takes an append that fits in the slack of the file's last
 * 4 KiB block (as ext4 and tmpfs do): a journal line may be written when the
 * image it records could not be. The bytes are counted, never refused.
 */
function fitsInLastBlock(path, n) {
  try {
    const size = fs.statSync(path).size;
    return size % 4096 !== 0 && (size % 4096) + n <= 4096;
  } catch {
    return false;
  }
}

for (const name of ['writeFile', 'appendFile']) {
  const orig = fsp[name];
  fsp[name] = async function (path, data, options) {
    if (typeof path !== 'string' && !(path instanceof URL) && !Buffer.isBuffer(path)) return orig.call(this, path, data, options);
    const b = asBuffer(data, options);
    if (name === 'appendFile' && exhausted(path) && fitsInLastBlock(path, b.byteLength)) return orig.call(this, path, b);
    const n = allow(b.byteLength, path);
    if (n < 0) throw fault('write', path);
    await orig.call(this, path, b.subarray(0, n), typeof options === 'object' ? { ...options, encoding: undefined } : undefined);
    if (n < b.byteLength) throw fault('write', path);
  };
}
const origMkdir = fsp.mkdir;
fsp.mkdir = async function (path, options) {
  if (exhausted(path) && !fs.existsSync(path)) throw fault('mkdir', path);
  return origMkdir.call(this, path, options);
};
const origCopy = fsp.copyFile;
fsp.copyFile = async function (src, dest, mode) {
  const n = allow(fs.statSync(src).size, dest);
  if (n < 0 || n < fs.statSync(src).size) throw fault('copyfile', dest);
  return origCopy.call(this, src, dest, mode);
};
const origLink = fsp.link;
fsp.link = async function (existing, path) {
  if (exhausted(path)) throw fault('link', path);
  return origLink.call(this, existing, path);
};

// --- fs (sync and callback) ----------------------------------------------------

const origOpenSync = fs.openSync;
fs.openSync = function (path, flags, mode) {
  if (writing(flags) && exhausted(path)) throw fault('open', path);
  const fd = origOpenSync.call(this, path, flags, mode);
  fdPaths.set(fd, String(path));
  return fd;
};
const origWriteSync = fs.writeSync;
fs.writeSync = function (fd, buffer, ...rest) {
  const path = fdPaths.get(fd);
  const b = typeof buffer === 'string' ? Buffer.from(buffer) : buffer;
  const off = typeof buffer === 'string' ? 0 : typeof rest[0] === 'number' ? rest[0] : 0;
  const len = typeof buffer === 'string' ? b.byteLength : typeof rest[1] === 'number' ? rest[1] : b.byteLength - off;
  const n = allow(len, path);
  if (n < 0) throw fault('write', path);
  return origWriteSync.call(this, fd, b, off, n, typeof buffer === 'string' ? rest[0] : rest[2]);
};
for (const name of ['writeFileSync', 'appendFileSync']) {
  const orig = fs[name];
  fs[name] = function (path, data, options) {
    if (typeof path === 'number') return orig.call(this, path, data, options);
    const b = asBuffer(data, options);
    const n = allow(b.byteLength, path);
    if (n < 0) throw fault('write', path);
    orig.call(this, path, b.subarray(0, n), typeof options === 'object' ? { ...options, encoding: undefined } : undefined);
    if (n < b.byteLength) throw fault('write', path);
  };
}
const origMkdirSync = fs.mkdirSync;
fs.mkdirSync = function (path, options) {
  if (exhausted(path) && !fs.existsSync(path)) throw fault('mkdir', path);
  return origMkdirSync.call(this, path, options);
};
// Streams and callback writers go through fs.write / fs.writev.
const origWrite = fs.write;
fs.write = function (fd, buffer, ...rest) {
  const cb = rest.pop();
  if (typeof buffer === 'string' || typeof cb !== 'function') return origWrite.call(this, fd, buffer, ...rest, cb);
  const off = typeof rest[0] === 'number' ? rest[0] : 0;
  const len = typeof rest[1] === 'number' ? rest[1] : buffer.byteLength - off;
  const n = allow(len, fdPaths.get(fd));
  if (n < 0) return process.nextTick(cb, fault('write', fdPaths.get(fd)));
  return origWrite.call(this, fd, buffer, off, n, rest[2] ?? null, cb);
};
const origWritev = fs.writev;
fs.writev = function (fd, buffers, position, cb) {
  if (typeof position === 'function') [position, cb] = [null, position];
  const total = buffers.reduce((a, b) => a + b.byteLength, 0);
  const n = allow(total, fdPaths.get(fd));
  if (n < total) return process.nextTick(cb, fault('write', fdPaths.get(fd)));
  return origWritev.call(this, fd, buffers, position, cb);
};
const origOpenCb = fs.open;
fs.open = function (path, flags, mode, cb) {
  if (typeof flags === 'function') [flags, mode, cb] = ['r', undefined, flags];
  else if (typeof mode === 'function') [mode, cb] = [undefined, mode];
  if (writing(flags) && exhausted(path)) return process.nextTick(cb, fault('open', path));
  return origOpenCb.call(this, path, flags, mode, (e, fd) => {
    if (!e) fdPaths.set(fd, String(path));
    cb(e, fd);
  });
};

// GENAUG_FAULT_COUNT=FILE: the bytes written under GENAUG_FAULT_UNDER, written there at exit (to place the faults).
if (process.env.GENAUG_FAULT_COUNT) {
  const countFile = process.env.GENAUG_FAULT_COUNT;
  const origWriteFileSync = fs.writeFileSync;
  process.on('exit', () => origWriteFileSync(countFile, String(written)));
}

syncBuiltinESMExports();
