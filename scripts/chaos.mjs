#!/usr/bin/env node
/**
 * Chaos: `genaug demo` killed (SIGKILL) and stopped (SIGTERM) at random points
 * spread over every stage, run again after each, must end with the same bytes
 * as an uninterrupted run.
 *
 * 1. An uninterrupted demo (the reference) gives each phase's duration: the
 *    real data ('data', from the start to the demo's "N real scenes" line) and
 *    every stage of the run (run.json's seconds).
 * 2. Kills are planned per phase (at least one in each), each at a random
 *    delay within that phase's reference duration after the phase's
 *    "<stage>: running" line; the demo is started again after each. Where a
 *    kill landed is read from what the killed process wrote last (its last
 *    phase line), not assumed; a kill planned for a phase the run finished
 *    first moves to the phase running then.
 * 3. SIGTERMs: exit 143, the folder's locks released, the journals whole.
 * 4. At the end: the run finishes (exit 0); every file but run.json, report/,
 *    summary.json (timings) and the journals/progress files is byte-identical
 *    to the reference; no temporary file, lock or journal folder is left;
 *    every journal holds each item exactly once (nothing lost, nothing doubled).
 *
 * Usage: node scripts/chaos.mjs [--images 160] [--kills 24] [--sigterms 4] [--seed 7] [--work DIR] [--keep] [--json FILE]
 * (npm run chaos builds dist/ first). Exit 0 when every check holds.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(repo, 'bin', 'genaug.js');

export const STAGES = ['plan', 'generate', 'annotate', 'embed', 'score', 'filter', 'pool', 'paste', 'report'];
export const PHASES = ['data', ...STAGES];
/** Phases whose stage has items and stops between them on SIGTERM. */
const ITEM_STAGES = ['generate', 'annotate', 'embed', 'paste'];

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The phase a demo's stderr line starts, or undefined. */
function phaseOf(line) {
  if (/^demo: \d+ real scenes/.test(line)) return 'after:data';
  const m = /^([a-z]+): (running|resuming|done in)\b/.exec(line);
  if (!m || !STAGES.includes(m[1])) return undefined;
  return m[2] === 'done in' ? `after:${m[1]}` : m[1];
}

/**
 * Runs `genaug demo` once. `onPhase(phase, child)` hears each phase as it
 * starts ('data' at once). Resolves with the exit code, the signal that
 * ended it, stderr, and the phase it was in when it ended (or when
 * `markSignal` was called).
 */
function runDemo(args, onPhase) {
  return new Promise((resolvePromise, reject) => {
    const t0 = Date.now();
    const child = spawn(process.execPath, [bin, 'demo', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    let buf = '';
    let phase = 'data';
    const phaseStarts = { data: 0 };
    let signalledIn;
    const control = {
      child,
      phase: () => phase,
      signal: (sig) => {
        if (signalledIn === undefined) signalledIn = phase;
        child.kill(sig);
      },
    };
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      err += d;
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const p = phaseOf(line);
        if (p) {
          phase = p;
          phaseStarts[p] = Date.now() - t0;
          onPhase?.(p, control);
        }
      }
    });
    onPhase?.('data', control);
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, stderr: err, phase, signalledIn, phaseStarts, ms: Date.now() - t0 }));
  });
}

async function filesUnder(dir) {
  const out = [];
  const walk = async (d) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) {
        out.push(relative(dir, p).split(sep).join('/') + '/');
        await walk(p);
      } else out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  if (existsSync(dir)) await walk(dir);
  return out.sort();
}

/** Outputs compared byte for byte: all but run.json, report/, summary.json (timings) and journals. */
const compared = (f) => !f.endsWith('/') && !/(^|\/)(run\.json|summary\.json|progress\.jsonl|journal\.jsonl|answers\.jsonl)$/.test(f) && !/^run\/report\//.test(f);
/** What no finished run may leave behind. */
const stray = (f) => /\.tmp$|(^|\/)\.lock$|\.lock$|\.takeover\/?$|\.partial\/?$/.test(f);
/** A file's hash; run.yaml names its own folder in a comment, which is put aside. */
const sha = async (p, folder) => {
  let data = await readFile(p);
  if (p.endsWith('run.yaml')) data = Buffer.from(data.toString('utf8').replaceAll(folder, '<out>'));
  return createHash('sha256').update(data).digest('hex');
};

/** Each journal's keys: every item exactly once, and as many as the reference's. */
async function journalCounts(dir) {
  const out = {};
  const keyed = {
    'run/generate/journal.jsonl': (j) => (j.status === 'ok' ? `${j.job}\u0000${j.candidate}` : undefined),
    'run/annotate/progress.jsonl': (j) => j.file,
    'run/paste/coco/progress.jsonl': (j) => `${j.image_index}:${j.copy}`,
    'run/paste/webdataset/progress.jsonl': (j) => `${j.image_index}:${j.copy}`,
  };
  for (const [rel, keyOf] of Object.entries(keyed)) {
    const text = await readFile(join(dir, rel), 'utf8');
    const keys = text.split('\n').filter((l) => l.trim()).map((l) => keyOf(JSON.parse(l))).filter((k) => k !== undefined);
    out[rel] = { lines: keys.length, unique: new Set(keys).size, endsWithNewline: text.endsWith('\n') };
  }
  return out;
}

/**
 * The whole experiment; returns its record (checks failed: `failures`, empty
 * when all hold). Options: images, kills (SIGKILLs, at least one per phase),
 * sigterms (on the stages with items, or `termStages`), phases (those the
 * kills are spread over; default all), seed, work (folder), keep, log.
 */
export async function chaos(o = {}) {
  const images = o.images ?? 160;
  const seed = o.seed ?? 7;
  const kills = o.kills ?? 24;
  const sigterms = o.sigterms ?? 4;
  const phases = o.phases ?? PHASES;
  const log = o.log ?? (() => {});
  const rnd = mulberry32(seed);
  const work = o.work ?? (await mkdtemp(join(tmpdir(), 'genaug-chaos-')));
  const ref = join(work, 'ref');
  const dir = join(work, 'chaos');
  await rm(ref, { recursive: true, force: true });
  await rm(dir, { recursive: true, force: true });
  const args = (out) => ['--images', String(images), '--seed', '1', '--out', out];
  const failures = [];
  const t0 = Date.now();

  // 1. The reference and its phase durations.
  const r0 = await runDemo(args(ref));
  if (r0.code !== 0) throw new Error(`the uninterrupted demo failed (exit ${r0.code}):\n${r0.stderr}`);
  const manifest = JSON.parse(await readFile(join(ref, 'run', 'run.json'), 'utf8'));
  const durationMs = { data: r0.phaseStarts['after:data'] ?? 1000 };
  for (const s of STAGES) durationMs[s] = Math.max(1, Math.round((manifest.stages[s]?.seconds ?? 0.001) * 1000));
  log(`reference: ${images} images in ${(r0.ms / 1000).toFixed(1)} s; phases (ms): ${JSON.stringify(durationMs)}`);

  // 2. The plan: every phase gets one SIGKILL, the rest spread in proportion to the phases' durations; SIGTERMs on item stages.
  const plan = [];
  const weight = phases.reduce((a, p) => a + durationMs[p], 0);
  const perPhase = Object.fromEntries(phases.map((p) => [p, kills >= phases.length ? 1 : 0]));
  for (let k = phases.length * (kills >= phases.length ? 1 : 0); k < kills; k++) {
    let x = rnd() * weight;
    const p = phases.find((q) => (x -= durationMs[q]) < 0) ?? phases[phases.length - 1];
    perPhase[p]++;
  }
  const termStages = o.termStages ?? ITEM_STAGES.filter((s) => phases.includes(s));
  const termsPer = Object.fromEntries(termStages.map((s) => [s, 0]));
  for (let t = 0; t < sigterms; t++) termsPer[termStages[t % termStages.length]]++;
  for (const p of PHASES.filter((q) => phases.includes(q) || termStages.includes(q))) {
    const events = [...Array(perPhase[p] ?? 0).fill('SIGKILL'), ...Array(termsPer[p] ?? 0).fill('SIGTERM')];
    // Shuffled within the phase.
    for (let i = events.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [events[i], events[j]] = [events[j], events[i]];
    }
    for (const signal of events) plan.push({ phase: p, signal });
  }

  // 3. Attempts: each runs until its next planned signal, or to the end.
  const record = [];
  const hitsIn = Object.fromEntries(PHASES.map((p) => [p, 0]));
  let attempts = 0;
  let finished = false;
  const planned = plan.length;
  while (!finished) {
    attempts++;
    if (attempts > planned + 20) {
      failures.push(`gave up after ${attempts - 1} attempts`);
      break;
    }
    const event = plan[0];
    let timer;
    let fired = false;
    const r = await runDemo(args(dir), (p, ctl) => {
      if (!event || fired) return;
      clearTimeout(timer);
      timer = undefined;
      const at = PHASES.indexOf(p.replace('after:', ''));
      // The planned phase, or a later one it was moved on to because the run finished it first.
      if (!p.startsWith('after:') && at >= PHASES.indexOf(event.phase)) {
        if (p !== event.phase) event.movedTo = p;
        // Resumed stages are shorter: the later hits of one stage come sooner.
        const span = durationMs[p] / (ITEM_STAGES.includes(p) ? 1 + hitsIn[p] : 1);
        // Anywhere in the phase, more often early (a loaded machine runs a phase slower or faster than the
        // reference did); a phase not yet hit is hit early, so a quick one (plan, filter) is not missed.
        // A phase of a few tens of ms (plan, filter: mostly the run.json write before its "running" line) is
        // signalled as soon as it starts, the first time.
        const r = rnd();
        const delay = hitsIn[p] === 0 && span < 100 ? 0 : Math.floor(span * (hitsIn[p] === 0 ? 0.5 * r * r : 0.9 * r ** 1.5));
        timer = setTimeout(() => {
          fired = true;
          ctl.signal(event.signal);
        }, delay);
        event.delayMs = delay;
      }
    });
    clearTimeout(timer);
    if (!fired) {
      if (r.code !== 0) failures.push(`attempt ${attempts}: exit ${r.code} with no signal sent:\n${r.stderr}`);
      finished = true;
      if (event) failures.push(`the run finished before its planned ${plan.length} signal(s) (next: ${event.signal} in ${event.phase})`);
      break;
    }
    plan.shift();
    // Where it landed: the phase the process was in when the signal came (from its own output).
    const landed = event.signal === 'SIGKILL' ? r.phase : r.signalledIn;
    const entry = { attempt: attempts, signal: event.signal, planned: event.phase, landed, delayMs: event.delayMs, code: r.code, exitSignal: r.signal };
    record.push(entry);
    if (!landed.startsWith('after:')) hitsIn[landed]++;
    log(`attempt ${attempts}: ${event.signal} planned in ${event.phase}, landed in ${landed} after ${event.delayMs} ms (${r.code ?? r.signal})`);
    if (event.signal === 'SIGKILL' && r.signal !== 'SIGKILL') failures.push(`attempt ${attempts}: SIGKILL sent but the process ended with ${r.code ?? r.signal}`);
    if (event.signal === 'SIGTERM') {
      // A SIGTERM after the last stage finished ends a complete run (0); otherwise 143, locks released, journals whole.
      if (r.code !== 143 && r.code !== 0) failures.push(`attempt ${attempts}: SIGTERM gave exit ${r.code ?? r.signal}, expected 143:\n${r.stderr.slice(-2000)}`);
      if (r.code === 143 && !/error \[E_ABORTED\]/.test(r.stderr)) failures.push(`attempt ${attempts}: SIGTERM exit without the E_ABORTED line`);
      const left = (await filesUnder(dir)).filter((f) => /(^|\/)\.lock$|\.lock$|\.tmp$/.test(f));
      if (left.length) failures.push(`attempt ${attempts}: SIGTERM left ${left.join(', ')}`);
      for (const j of ['run/generate/journal.jsonl', 'run/annotate/progress.jsonl', 'run/paste/coco/progress.jsonl', 'run/paste/webdataset/progress.jsonl']) {
        const p = join(dir, j);
        if (existsSync(p)) {
          const text = await readFile(p, 'utf8');
          if (text && !text.endsWith('\n')) failures.push(`attempt ${attempts}: SIGTERM left a torn last line in ${j}`);
        }
      }
    }
  }

  // 4. The final state against the reference.
  let compare;
  if (finished) {
    const [fa, fb] = [await filesUnder(ref), await filesUnder(dir)];
    const left = fb.filter(stray);
    if (left.length) failures.push(`stray files after the last run: ${left.join(', ')}`);
    const ca = fa.filter(compared);
    const cb = fb.filter(compared);
    const missing = ca.filter((f) => !cb.includes(f));
    const extra = cb.filter((f) => !ca.includes(f));
    if (missing.length) failures.push(`missing: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` (+${missing.length - 10})` : ''}`);
    if (extra.length) failures.push(`extra: ${extra.slice(0, 10).join(', ')}${extra.length > 10 ? ` (+${extra.length - 10})` : ''}`);
    let differing = 0;
    for (const f of ca.filter((x) => cb.includes(x))) {
      if ((await sha(join(ref, f), ref)) !== (await sha(join(dir, f), dir))) {
        differing++;
        if (differing <= 10) failures.push(`differs: ${f}`);
      }
    }
    const [ja, jb] = [await journalCounts(ref), await journalCounts(dir)];
    for (const [j, c] of Object.entries(jb)) {
      if (c.lines !== c.unique) failures.push(`${j}: ${c.lines} lines for ${c.unique} items (doubled)`);
      if (c.unique !== ja[j].unique) failures.push(`${j}: ${c.unique} items, the reference has ${ja[j].unique} (lost)`);
      if (!c.endsWithNewline) failures.push(`${j}: torn last line`);
    }
    compare = { files: ca.length, differing, missing: missing.length, extra: extra.length, journals: jb };
  }
  for (const p of new Set([...phases, ...termStages])) if (hitsIn[p] === 0) failures.push(`no signal landed in ${p}`);
  const landedKills = record.filter((e) => e.signal === 'SIGKILL').length;
  if (landedKills < kills) failures.push(`${landedKills} SIGKILLs landed, ${kills} planned`);
  const perPhaseCount = Object.fromEntries(PHASES.map((p) => [p, { SIGKILL: 0, SIGTERM: 0 }]));
  // A signal that came between two stages counts under 'after:<stage>'.
  for (const e of record) (perPhaseCount[e.landed] ??= { SIGKILL: 0, SIGTERM: 0 })[e.signal]++;
  const result = {
    images,
    seed,
    kills: landedKills,
    sigterms: record.filter((e) => e.signal === 'SIGTERM').length,
    attempts,
    perPhase: perPhaseCount,
    referenceSeconds: r0.ms / 1000,
    seconds: (Date.now() - t0) / 1000,
    compare,
    record,
    failures,
    work,
  };
  if (!o.keep && failures.length === 0) await rm(work, { recursive: true, force: true });
  return result;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const a = process.argv.slice(2);
  const opt = (name, def) => {
    const i = a.indexOf(name);
    return i >= 0 ? a[i + 1] : def;
  };
  const r = await chaos({
    images: Number(opt('--images', 160)),
    kills: Number(opt('--kills', 24)),
    sigterms: Number(opt('--sigterms', 4)),
    seed: Number(opt('--seed', 7)),
    ...(opt('--work') ? { work: opt('--work') } : {}),
    keep: a.includes('--keep'),
    log: (s) => process.stderr.write(`${s}\n`),
  });
  const { record: _r, ...summary } = r;
  process.stdout.write(JSON.stringify(summary, null, 1) + '\n');
  const jsonOut = opt('--json');
  if (jsonOut) await (await import('node:fs/promises')).writeFile(jsonOut, JSON.stringify(r, null, 1) + '\n');
  if (r.failures.length) {
    process.stderr.write(`chaos: FAILED (${r.failures.length}):\n  ${r.failures.join('\n  ')}\n(work folder kept: ${r.work})\n`);
    process.exit(1);
  }
  process.stderr.write(`chaos: passed: ${r.kills} SIGKILLs and ${r.sigterms} SIGTERMs over ${r.attempts} attempts, ${r.compare.files} files identical, in ${r.seconds.toFixed(0)} s\n`);
}
