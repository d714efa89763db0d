/** `genaug filter`: keep/drop samples of a scores table by the rules of a method, every decision recorded with its reason. */
import { Command } from 'commander';

import { applyFilters, balancedSubsample, FILTER_DEFAULTS, PRESETS, writeDecisions, type Rule } from '../curate/filters.js';
import { readScores } from '../curate/table.js';
import { GenaugError } from '../native/errors.js';
import { intArg, numberArg, type GlobalOptions } from './args.js';

export function filterCommand(global: GlobalOptions): Command {
  return new Command('filter')
    .description('keep or drop samples by a method’s rules over a scores table (genaug score): X-Paste CLIP bar + area, DiverGen inter-similarity, ACP best-of-N, ALIA semantic + confidence, near-duplicate removal')
    .requiredOption('--scores <file>', 'scores table (.jsonl or .csv)')
    .option('--preset <name>', 'xpaste | divergen | acp | alia')
    .option('--dedup', 'also keep one sample per near-duplicate group (column dup_group)')
    .option('--rules <list>', `comma-separated rules applied in this order, after --dedup and before the preset's: ${['dedup', 'border', 'area', 'own-class', 'knn', 'xpaste', 'divergen', 'acp', 'alia'].join(', ')} (genaug run's chain: dedup,border,area,<preset>,own-class,divergen,knn)`)
    .requiredOption('--out <file>', 'kept samples (JSONL: id, reason, values); the rejected ones go to --rejected')
    .option('--rejected <file>', 'rejected samples with reason and numbers (default: <out> with .rejected.jsonl)')
    .option('--min-clip <x>', 'xpaste: the bar cap min_clip on the ×100 CLIP score', numberArg('--min-clip'), FILTER_DEFAULTS.minClip)
    .option('--tol <x>', 'xpaste: bar = min(min_clip, best of the category − tol)', numberArg('--tol'), FILTER_DEFAULTS.tol)
    .option('--min-area <x>', 'xpaste: smallest foreground area fraction', numberArg('--min-area'), FILTER_DEFAULTS.minArea)
    .option('--max-area <x>', 'xpaste: largest foreground area fraction', numberArg('--max-area'), FILTER_DEFAULTS.maxArea)
    .option('--threshold <x>', 'divergen: keep when inter-similarity ≥ this', numberArg('--threshold'), FILTER_DEFAULTS.threshold)
    .option('--similarity-column <name>', 'divergen: inter_sim_mean | inter_sim_max | inter_sim_topk', FILTER_DEFAULTS.similarityColumn)
    .option('--exempt <categories...>', 'divergen: categories kept without a score (no real crops)')
    .option('--exempt-missing', 'divergen: keep every sample whose category has no real crops (the reference drops them)')
    .option('--knn-min <n>', 'knn: nearest real crops of the same class needed (capped at half the class’s real crops)', numberArg('--knn-min'), FILTER_DEFAULTS.knnMin)
    .option('--score-column <name>', 'acp: the score to pick the best of N by', FILTER_DEFAULTS.scoreColumn)
    .option('--group-column <name>', 'acp: the column naming the plan job of each candidate', FILTER_DEFAULTS.groupColumn)
    .option('--subsample <n>', 'after the rules, keep n in all, class-balanced (ALIA: the size of the real set it extends); the rest are dropped as subsample:not-drawn', intArg('--subsample', 0))
    .option('--seed <n>', '--subsample: the draw within each class', intArg('--seed', 0, 2 ** 31 - 1), 0)
    .action(async (o) => {
      const rules: Rule[] = [];
      if (o.dedup) rules.push('dedup');
      if (o.rules) rules.push(...(String(o.rules).split(',').map((r) => r.trim()).filter(Boolean) as Rule[]));
      if (o.preset) {
        if (!(o.preset in PRESETS)) throw new GenaugError('E_ARGUMENT', `--preset must be one of ${Object.keys(PRESETS).join(', ')}, got ${o.preset}`);
        for (const r of PRESETS[o.preset as keyof typeof PRESETS]) if (!rules.includes(r)) rules.push(r);
      }
      if (rules.length === 0 && o.subsample === undefined) throw new GenaugError('E_ARGUMENT', 'give --preset, --rules, --dedup and/or --subsample');
      const table = await readScores(o.scores);
      const ruled = applyFilters(table, rules, {
        minClip: o.minClip, tol: o.tol, minArea: o.minArea, maxArea: o.maxArea, threshold: o.threshold, similarityColumn: o.similarityColumn,
        exemptCategories: o.exempt ?? [], exemptMissing: Boolean(o.exemptMissing), scoreColumn: o.scoreColumn, groupColumn: o.groupColumn,
        knnMin: o.knnMin,
      });
      const decisions = o.subsample !== undefined ? balancedSubsample(ruled, table, o.subsample, o.seed) : ruled;
      const rejPath = o.rejected ?? String(o.out).replace(/(\.jsonl)?$/i, '.rejected.jsonl');
      await writeDecisions(decisions, o.out, rejPath);
      global.print(`filter (${rules.join('+')}${o.subsample !== undefined ? `, subsample ${o.subsample}` : ''}): kept ${decisions.filter((d) => d.kept).length} of ${decisions.length}; wrote ${o.out} and ${rejPath}`);
    });
}
