/**
 * A hostile AUTOMATIC1111-style image server for load tests (vitest and
 * `npm run load`; plain JavaScript so that scripts/load.mjs runs it without a
 * build step).
 *
 * Each request (POST /sdapi/v1/txt2img) gets an action from a seeded schedule,
 * a function of (schedule seed, job seed, attempt) only, so a run is the same
 * whatever order the client's lanes send in:
 *   ok        the image, after the configured delay
 *   slow      the image, after a longer delay (still inside the client's timeout)
 *   hang      no answer until the client gives up (its timeout)
 *   drop      the socket destroyed before any response
 *   cut       headers and half of the body, then the socket destroyed
 *   500/502/503  an error (503 without Retry-After)
 *   429s      429 with Retry-After in seconds
 *   429d      429 with Retry-After as an HTTP-date
 * After `maxFaults` faults a job is answered; `doomed` jobs always get 500.
 *
 * The server records what an oracle needs: requests in flight (from arrival to
 * the response's close) and their maximum, every arrival and end with its job
 * and attempt, and every Retry-After it sent with the time it named. Images
 * are tiny PNGs drawn from (seed, prompt) by `pngFor`, so a test can check
 * each file on disk against the image the server gave for that job.
 *
 * Run as a program (`node test/load-server.mjs '{"seed":1}'`) it prints
 * {"url": ...} on its first line and serves until stdin closes; a line "stats"
 * on stdin prints the counters as one JSON line.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}

/** An RGB PNG whose pixels are a SHA-256 stream of `seed|prompt`: a distinct image per job. */
export function pngFor(seed, prompt, width = 8, height = 8) {
  const rowBytes = width * 3;
  const raw = Buffer.alloc((rowBytes + 1) * height);
  let block = Buffer.alloc(0);
  let counter = 0;
  let used = 0;
  for (let y = 0; y < height; y++) {
    raw[y * (rowBytes + 1)] = 0; // filter: none
    for (let x = 0; x < rowBytes; x++) {
      if (used >= block.length) {
        block = createHash('sha256').update(`${seed}|${prompt}|${counter++}`).digest();
        used = 0;
      }
      raw[y * (rowBytes + 1) + 1 + x] = block[used++];
    }
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** A uniform draw in [0, 1) from the parts (the schedule's randomness). */
function draw(...parts) {
  return createHash('sha256').update(parts.join('|')).digest().readUInt32LE(0) / 2 ** 32;
}

export const FAULTS = ['slow', 'hang', 'drop', 'cut', '500', '502', '503', '429s', '429d'];

/**
 * @param {object} o
 * @param {number} [o.seed] schedule seed
 * @param {number} [o.delayMs] delay of every answer (default 0)
 * @param {number} [o.slowMs] delay of a 'slow' answer (default 200)
 * @param {Record<string, number>} [o.faults] probability of each fault per attempt (the rest: ok)
 * @param {number} [o.maxFaults] faults per job before it is answered (default 3)
 * @param {number} [o.retryAfterS] Retry-After of a 429s, seconds (default 1)
 * @param {number} [o.retryAfterDateMs] a 429d names the whole second at least this far ahead (default 1500)
 * @param {number[]} [o.doomed] job seeds that always get 500
 * @param {boolean} [o.record] keep every arrival and end (default true; the 10,000-job script turns it off)
 */
export async function hostileServer(o = {}) {
  const seed = o.seed ?? 1;
  const faults = o.faults ?? {};
  const maxFaults = o.maxFaults ?? 3;
  const doomed = new Set(o.doomed ?? []);
  const record = o.record !== false;
  const stats = { requests: 0, inFlight: 0, maxInFlight: 0, maxInFlightRaw: 0, ok: 0, faults: Object.fromEntries(FAULTS.map((f) => [f, 0])), doomed: 0 };
  /** @type {Array<{t: number, type: 'arrive' | 'end', job?: number, attempt?: number, action?: string}>} */
  const events = [];
  /** @type {Array<{t: number, job: number, attempt: number, form: 's' | 'date', header: string, until: number}>} */
  const retryAfters = [];
  const attempts = new Map();
  const sockets = new Set();
  const now = () => performance.timeOrigin + performance.now();

  const actionFor = (job, attempt) => {
    if (doomed.has(job)) return 'doomed';
    const faultsSoFar = attempt - 1; // every earlier attempt of a job was a fault
    if (faultsSoFar >= maxFaults) return 'ok';
    let u = draw(seed, job, attempt);
    for (const f of FAULTS) {
      const p = faults[f] ?? 0;
      if (u < p) return f;
      u -= p;
    }
    return 'ok';
  };

  const server = createServer((req, res) => {
    const arrived = now();
    stats.requests++;
    stats.inFlight++;
    stats.maxInFlightRaw = Math.max(stats.maxInFlightRaw, stats.inFlight);
    // Counted once the connections closed in the same turn of the event loop are counted out: a client that
    // dropped a request and sent the next one is not two requests in flight because both reached us together.
    setImmediate(() => (stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight)));
    let ended = false;
    let job;
    let attempt;
    let action;
    /** When the server answered or cut the connection (the client cannot know the outcome earlier). */
    let answered;
    const mark = () => (answered = now());
    const end = () => {
      if (ended) return;
      ended = true;
      stats.inFlight--;
      // byClient: the client closed the connection before any answer (its timeout): the server cannot know when.
      if (record) events.push({ t: answered ?? now(), type: 'end', job, attempt, action, byClient: answered === undefined });
    };
    res.on('close', end);
    req.on('close', () => {
      if (res.writableEnded || res.destroyed || req.socket.destroyed) end();
    });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', async () => {
      let b;
      try {
        b = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        b = undefined;
      }
      if (req.method !== 'POST' || req.url !== '/sdapi/v1/txt2img' || !b || !Number.isInteger(b.seed) || typeof b.prompt !== 'string') {
        return send(res, 422, { detail: [{ loc: ['body'], msg: 'value is not valid', type: 'type_error' }] });
      }
      job = b.seed;
      attempt = (attempts.get(job) ?? 0) + 1;
      attempts.set(job, attempt);
      action = actionFor(job, attempt);
      if (record) events.push({ t: arrived, type: 'arrive', job, attempt, action });
      if (action === 'ok') stats.ok++;
      else if (action === 'doomed') stats.doomed++;
      else stats.faults[action]++;
      if (o.delayMs) await wait(o.delayMs);
      if (res.destroyed) return;
      switch (action) {
        case 'slow':
          await wait(o.slowMs ?? 200);
          if (res.destroyed) return;
          mark();
          return send(res, 200, answer(b));
        case 'hang':
          return; // the client's timeout closes the connection
        case 'drop':
          mark();
          return void req.socket.destroy();
        case 'cut': {
          const text = JSON.stringify(answer(b));
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) });
          res.write(text.slice(0, Math.floor(text.length / 2)));
          return void setTimeout(() => {
            mark();
            req.socket.destroy();
          }, 5);
        }
        case '500':
        case 'doomed':
          mark();
          return send(res, 500, { error: 'RuntimeError', detail: '', body: '', errors: `model crashed on job ${job}` });
        case '502':
          mark();
          return send(res, 502, '<html><body><h1>502 Bad Gateway</h1></body></html>', 'text/html');
        case '503':
          mark();
          return send(res, 503, 'Service Unavailable', 'text/plain');
        case '429s': {
          const s = o.retryAfterS ?? 1;
          const t = now();
          retryAfters.push({ t, job, attempt, form: 's', header: String(s), until: t + s * 1000 });
          answered = t;
          return send(res, 429, { detail: 'too many requests' }, 'application/json', { 'retry-after': String(s) });
        }
        case '429d': {
          const t = now();
          // An HTTP-date names a whole second: the first one at least retryAfterDateMs ahead.
          const until = Math.ceil((t + (o.retryAfterDateMs ?? 1500)) / 1000) * 1000;
          const header = new Date(until).toUTCString();
          retryAfters.push({ t, job, attempt, form: 'date', header, until });
          answered = t;
          return send(res, 429, { detail: 'too many requests' }, 'application/json', { 'retry-after': header });
        }
        default:
          mark();
          return send(res, 200, answer(b));
      }
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });

  function answer(b) {
    const w = Number.isInteger(b.width) && b.width > 0 && b.width <= 64 ? b.width : 8;
    const h = Number.isInteger(b.height) && b.height > 0 && b.height <= 64 ? b.height : 8;
    return {
      images: [pngFor(b.seed, b.prompt, w, h).toString('base64')],
      parameters: {},
      info: JSON.stringify({ seed: b.seed, all_seeds: [b.seed], sd_model_name: 'hostile' }),
    };
  }

  await new Promise((r) => server.listen(o.port ?? 0, '127.0.0.1', r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    events,
    retryAfters,
    attempts,
    actionFor,
    close: () =>
      new Promise((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

function send(res, status, body, type = 'application/json', headers = {}) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, ...headers });
  res.end(text);
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));

// As a program: serve until stdin closes.
if (import.meta.url === `file://${process.argv[1]}`) {
  const s = await hostileServer(JSON.parse(process.argv[2] ?? '{}'));
  process.stdout.write(`${JSON.stringify({ url: s.url })}\n`);
  process.stdin.setEncoding('utf8');
  let buf = '';
  process.stdin.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line === 'stats') process.stdout.write(`${JSON.stringify({ ...s.stats, rss: process.memoryUsage().rss })}\n`);
    }
  });
  process.stdin.on('end', () => void s.close().then(() => process.exit(0)));
}
