/** The small demo-world run config that the pipeline tests and the end-to-end test share. */
export function smallConfig(runDir: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'small',
    seed: 7,
    run_dir: runDir,
    real: { coco: 'data/annotations.json', images: 'data/images' },
    plan: { strategy: 'template', per_class: 3, rare_per_class: 4, width: 96, height: 96 },
    generate: { backend: 'procedural', concurrency: 2 },
    annotate: { workers: 0 },
    embed: { model: 'features', real_crop_padding: 6 },
    filter: { dedup_threshold: 0.999, reject_border: true, require_own_class_best: true },
    paste: { max_samples: 4, workers: 0 },
    export: { shard_size: 4 },
    report: { thumbnails: 8, thumb_size: 48 },
    ...extra,
  };
}
