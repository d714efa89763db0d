/** `genaug bnstats`: per-domain BatchNorm statistics of an activations file, exported for PyTorch. */
import { Command, Option } from 'commander';

import { openForReading, writeFileAtomic } from '../io/atomic.js';
import { readNpyHeader, readNpyRows } from '../io/npy.js';
import { writeSafetensors } from '../io/safetensors.js';
import { readLabels } from '../kernels/files.js';
import { BnStatsAccumulator, bnStats, channelsOf, mergeBnStats, type BnStatsState, type Layout } from '../kernels/bnstats.js';
import { modelBnStats } from '../curate/auxbn.js';
import { GenaugError } from '../native/errors.js';
import type { Device } from '../native/device.js';
import { deviceOption, intArg, type GlobalOptions } from './args.js';
import { Progress } from './progress.js';

/**
 * The command line's layouts name every axis, so the file's rank must match: nc (BatchNorm1d on features),
 * ncl / nlc (BatchNorm1d on sequences), nchw / nhwc (BatchNorm2d), ncdhw / ndhwc (BatchNorm3d).
 */
export const FILE_LAYOUTS = { nc: 2, ncl: 3, nlc: 3, nchw: 4, nhwc: 4, ncdhw: 5, ndhwc: 5 } as const;
export type FileLayout = keyof typeof FILE_LAYOUTS;
const AXES: Record<FileLayout, string> = { nc: 'N, C', ncl: 'N, C, L', nlc: 'N, L, C', nchw: 'N, C, H, W', nhwc: 'N, H, W, C', ncdhw: 'N, C, D, H, W', ndhwc: 'N, D, H, W, C' };

/**
 * The library layout (where the channels are) of a file layout, checked against the file's shape; without
 * one, channels first, named by rank (PyTorch's convention).
 */
export function fileLayout(shape: readonly number[], layout: FileLayout | Layout | undefined, file: string): { layout: Layout; name: FileLayout } {
  const byRank = (Object.keys(FILE_LAYOUTS) as FileLayout[]).find((k) => FILE_LAYOUTS[k] === shape.length && AXES[k].split(', ')[1] === 'C');
  const name = (layout ?? byRank) as FileLayout | undefined;
  if (name === undefined) {
    throw new GenaugError('E_SHAPE', `${file}: activations of shape (${shape.join(', ')}) have ${shape.length} dimensions; expected 2 to 5 (N, C, ...)`, { path: file, shape });
  }
  if (!(name in FILE_LAYOUTS)) throw new GenaugError('E_ARGUMENT', `--layout ${String(name)} is not one of ${Object.keys(FILE_LAYOUTS).join(', ')}`);
  if (FILE_LAYOUTS[name] !== shape.length) {
    const fits = (Object.keys(FILE_LAYOUTS) as FileLayout[]).filter((k) => FILE_LAYOUTS[k] === shape.length);
    throw new GenaugError(
      'E_SHAPE',
      `${file}: --layout ${name} expects ${FILE_LAYOUTS[name]}-D activations (${AXES[name]}), got shape (${shape.join(', ')})` +
        (fits.length ? `; for ${shape.length}-D activations use --layout ${fits.join(' or ')}` : ''),
      { path: file, shape, expected: AXES[name] },
    );
  }
  return { layout: name === 'nlc' || name === 'nhwc' || name === 'ndhwc' ? 'nhwc' : 'nchw', name };
}

export interface BnStatsFileOptions {
  activations: string;
  domains?: string;
  numDomains?: number;
  /** The file's layout, every axis named (rank checked); default: channels first by rank. */
  layout?: FileLayout | Layout;
  out: string;
  layer: string;
  batchSize?: number;
  momentum: number | null;
  nonfinite: 'reject' | 'skip';
  source?: 'running' | 'exact';
  /** Where the statistics are computed (see BnStatsOptions.device): the same bytes on either. */
  device?: Device;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Streams an N x ... activations .npy (float32 or float16) in batches, tags
 * each sample with its domain, and writes OUT (safetensors: running_mean,
 * running_var, num_batches_tracked per domain) and OUT's .json twin (the exact
 * statistics and the accumulator state, which `BnStatsAccumulator.fromJSON`
 * restores). Without a batch size the whole file is one batch (read in
 * pieces, merged exactly).
 */
export async function bnstatsFile(o: BnStatsFileOptions) {
  const h = await readNpyHeader(o.activations);
  if (h.dtype !== 'float32' && h.dtype !== 'float16') {
    throw new GenaugError('E_DTYPE', `${o.activations}: activations must be float32 or float16, got ${h.dtype}`);
  }
  const { layout, name: layoutName } = fileLayout(h.shape, o.layout, o.activations);
  const { n, c, s } = channelsOf(h.shape, layout);
  const domains = o.domains ? await readLabels(o.domains, n) : undefined;
  // Two domains (real, synthetic) unless told: a stray tag must not silently grow the model by empty aux BNs.
  const numDomains = o.numDomains ?? (domains ? 2 : 1);
  if (domains) {
    const bad = domains.findIndex((d) => d < 0 || d >= numDomains);
    if (bad >= 0) {
      const hint = o.numDomains === undefined && (domains[bad] as number) > 0 ? `; give --num-domains ${domains.reduce((m, v) => Math.max(m, v), 0) + 1} if the file really holds that many domains` : '';
      throw new GenaugError('E_RANGE', `${o.domains}: domain[${bad}] = ${domains[bad]} is outside [0, ${numDomains})${hint}`, { path: o.domains, index: bad });
    }
  }
  const acc = new BnStatsAccumulator({ channels: c, numDomains, momentum: o.momentum, nonfinite: o.nonfinite });
  const sampleValues = c * s;
  const itemBytes = h.itemsize;
  // Pieces of at most ~256 MiB; a batch is one or more pieces.
  const pieceSamples = Math.max(1, Math.floor((256 * 2 ** 20) / (sampleValues * itemBytes)));
  const batch = o.batchSize ?? n;
  const { fh } = await openForReading(o.activations);
  try {
    for (let b0 = 0; b0 < n; b0 += batch) {
      const b1 = Math.min(n, b0 + batch);
      let merged: BnStatsState | undefined;
      for (let p0 = b0; p0 < b1; p0 += pieceSamples) {
        const p1 = Math.min(b1, p0 + pieceSamples);
        const count = (p1 - p0) * sampleValues;
        const raw = await readNpyRows(fh, h, p0, p1 - p0, o.activations);
        const data = h.dtype === 'float32' ? new Float32Array(raw.buffer, raw.byteOffset, count) : new Uint16Array(raw.buffer, raw.byteOffset, count);
        const shape = [p1 - p0, ...h.shape.slice(1)];
        let part: BnStatsState;
        try {
          part = await bnStats({ data, shape, layout }, {
            ...(domains ? { domains: domains.subarray(p0, p1) } : {}),
            numDomains,
            nonfinite: o.nonfinite,
            ...(o.device && o.device !== 'cpu' ? { device: o.device } : {}),
          });
        } catch (e) {
          if (e instanceof GenaugError && e.code === 'E_NONFINITE') {
            throw new GenaugError('E_NONFINITE', `${o.activations}: ${e.message.replace(/sample (\d+)/, (_, k: string) => `sample ${p0 + Number(k)}`)}`);
          }
          throw e;
        }
        merged = merged ? mergeBnStats(merged, part) : part;
        o.onProgress?.(p1, n);
      }
      if (merged) acc.apply(merged);
    }
  } finally {
    await fh.close();
  }
  const tensors = acc.tensors(o.layer, { source: o.source ?? 'running' });
  await writeSafetensors(o.out, tensors, { producer: 'genaug bnstats', layout: layoutName, momentum: String(o.momentum) });
  const jsonPath = o.out.replace(/\.safetensors$/, '') + '.json';
  await writeFileAtomic(jsonPath, new TextEncoder().encode(JSON.stringify({ layer: o.layer, samples: n, ...acc.toJSON() }) + '\n'));
  return { accumulator: acc, files: [o.out, jsonPath] };
}

export function bnstatsCommand(global: GlobalOptions): Command {
  return new Command('bnstats')
    .description(
      'per-channel BatchNorm statistics per domain (real/synthetic), exported as PyTorch running_mean/running_var for the main and auxiliary BN: ' +
        'from an activations .npy (--activations), or from an ONNX classifier run on image folders (--model --real --synthetic: every BN layer at once)',
    )
    .option('--activations <file>', 'activations .npy (C or Fortran order), float32 or float16: N x C (nc), N x C x L (ncl), N x C x H x W (nchw), N x C x D x H x W (ncdhw), or channels last (nlc, nhwc, ndhwc)')
    .option('--domains <file>', 'domain of each sample, (N,) int .npy: 0 = real (main BN), 1 = synthetic (aux BN), ...')
    .option('--num-domains <n>', 'number of domains (default: 2 with --domains, else 1)', intArg('--num-domains', 1, 65536))
    .addOption(new Option('--layout <layout>', 'layout of the activations, every axis named; the file must have that many dimensions (default: channels first by rank: nc, ncl, nchw or ncdhw)').choices(Object.keys(FILE_LAYOUTS)))
    .requiredOption('--out <file>', 'output .safetensors; the exact statistics and state go to the same name with .json')
    .option('--layer <name>', 'BatchNorm module name in the state dict, e.g. layer1.0.bn1', 'bn')
    .option('--batch-size <n>', 'samples per training batch for the running update (default: the whole file is one batch)', intArg('--batch-size', 1))
    .option('--momentum <m>', "PyTorch BN momentum, or 'none' for the cumulative average", '0.1')
    .addOption(deviceOption('the statistics of --activations (the same bytes on either)'))
    .addOption(new Option('--nonfinite <policy>', 'NaN/Inf in activations: reject (error naming sample, channel, position) or skip (counted)').choices(['reject', 'skip']).default('reject'))
    .addOption(new Option('--source <source>', 'what to export as running stats: running (momentum updates) or exact (mean and unbiased variance of all data)').choices(['running', 'exact']).default('running'))
    .option('--model <onnx>', 'ONNX classifier with BatchNormalization nodes (exported with training=TrainingMode.PRESERVE so BN is not folded): statistics of the input of every BN layer, named by the state dict (<layer>.running_mean; <layer>.aux_bn.* for --synthetic)')
    .option('--real <dir>', '--model: folder of real images (domain 0, the main BN)')
    .option('--synthetic <dir>', '--model: folder of synthetic images (domain 1, the auxiliary BN)')
    .option('--size <px>', '--model: centre-crop side fed to the model (default: the model\'s fixed input side, else 224)', intArg('--size', 1, 4096))
    .option('--resize <px>', '--model: shorter side before the crop (default: size / 0.875, 256 for 224)', intArg('--resize', 1, 16384))
    .option('--mean <r,g,b>', '--model: normalisation mean of [0, 1] pixels (default ImageNet: 0.485,0.456,0.406)')
    .option('--std <r,g,b>', '--model: normalisation std (default ImageNet: 0.229,0.224,0.225)')
    .option('-q, --quiet', 'no progress output')
    .addHelpText('after', '\nWith --model the default --source is exact (every value of every image, whatever the batch order) and --batch-size is 32.')
    .action(async (o, cmd: Command) => {
      let momentum: number | null;
      if (o.momentum === 'none') momentum = null;
      else {
        momentum = Number(o.momentum);
        if (!(momentum > 0 && momentum <= 1)) throw new GenaugError('E_ARGUMENT', `--momentum must be in (0, 1] or 'none', got '${o.momentum}'`);
      }
      if (Boolean(o.activations) === Boolean(o.model)) throw new GenaugError('E_ARGUMENT', 'give either --activations FILE.npy or --model FILE.onnx with --real DIR and --synthetic DIR');
      let bar: Progress | undefined;
      if (o.model) {
        if (!o.real || !o.synthetic) throw new GenaugError('E_ARGUMENT', '--model needs --real DIR and --synthetic DIR (the images of the main and the auxiliary BN)');
        for (const k of ['domains', 'numDomains', 'layout'] as const) if (o[k] !== undefined) throw new GenaugError('E_ARGUMENT', `--${k === 'numDomains' ? 'num-domains' : k} applies to --activations, not --model`);
        const triple = (v: string) => v.split(',').map((x) => Number(x.trim()));
        if (o.device !== 'cpu') throw new GenaugError('E_ARGUMENT', '--device applies to --activations; with --model the statistics come from onnxruntime on the CPU');
        const sourceGiven = cmd.getOptionValueSource('source') === 'cli';
        const r = await modelBnStats({
          model: o.model,
          domains: [o.real, o.synthetic],
          out: o.out,
          batchSize: o.batchSize ?? 32,
          ...(o.size ? { size: o.size } : {}),
          ...(o.resize ? { resize: o.resize } : {}),
          ...(o.mean ? { mean: triple(o.mean) } : {}),
          ...(o.std ? { std: triple(o.std) } : {}),
          source: sourceGiven ? o.source : 'exact',
          momentum,
          onProgress: (done, total) => {
            bar ??= new Progress('bnstats', total, 'images', o.quiet);
            bar.update(done);
          },
        });
        for (const im of r.images) global.print(`${im.folder}: ${im.used} images${im.failed ? `, ${im.failed} failed (listed in the .json)` : ''}`);
        global.print(`${r.layers.length} BatchNorm layers: ${r.layers.map((l) => `${l.layer} (${l.channels})`).join(', ')}`);
        global.print(`wrote ${r.files.join(' and ')}`);
        return;
      }
      for (const k of ['real', 'synthetic', 'size', 'resize', 'mean', 'std'] as const) if (o[k] !== undefined) throw new GenaugError('E_ARGUMENT', `--${k} applies to --model, not --activations`);
      const r = await bnstatsFile({
        activations: o.activations,
        ...(o.domains ? { domains: o.domains } : {}),
        ...(o.numDomains ? { numDomains: o.numDomains } : {}),
        ...(o.layout ? { layout: o.layout as FileLayout } : {}),
        out: o.out,
        layer: o.layer,
        ...(o.batchSize ? { batchSize: o.batchSize } : {}),
        momentum,
        nonfinite: o.nonfinite,
        ...(o.device !== 'cpu' ? { device: o.device as Device } : {}),
        source: o.source,
        onProgress: (done, total) => {
          bar ??= new Progress('bnstats', total, 'samples', o.quiet);
          bar.update(done);
        },
      });
      const acc = r.accumulator;
      const C = acc.channels;
      for (let d = 0; d < acc.numDomains; d++) {
        global.print(`domain ${d}: ${acc.totals.count[d * C]} values per channel, ${acc.numBatchesTracked[d]} batch(es)`);
      }
      global.print(`wrote ${r.files.join(' and ')}`);
    });
}
