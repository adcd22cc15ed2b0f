"""Test-time augmentation against none, in one run: MAP@R of the demo's fusion head (`bm-demo`: EfficientNet-Lite0 features of
synthetic buildings, when its weights are installed) with each photo alone, with its mirror image (`flip`), and with its
mirror image and a zoomed view of both (`multicrop`), on held-out views of seen buildings and on unseen buildings.

The extra views are extracted into the demo's feature cache (`bm-extract --tta`), then `evaluate(..., tta=...)` embeds them.

Usage: python benchmarks/tta.py [--epochs 30]
"""

import argparse, os, tempfile, time
from pathlib import Path


def main(epochs: int = 30):
    os.environ.setdefault('BUILDING_METRIC_PROGRESS', '0')
    from building_metric.callbacks import load_checkpoint
    from building_metric.data.index import BuildingIndex
    from building_metric.evaluation.report import demo, evaluate, seen_unseen_split
    from building_metric.features.cache import FeatureCache, extract_features
    from building_metric.features.extractors import checked_extractors, tta_extractors

    tmp = Path(tempfile.mkdtemp())
    demo(tmp / 'demo', epochs=epochs, log=lambda s: None)
    ckpt = tmp / 'demo' / 'run' / 'models' / 'best.pth'
    _, meta = load_checkpoint(ckpt)
    index = seen_unseen_split(
        BuildingIndex.from_folder(tmp / 'demo' / 'data', progress=False), seed=0
    )  # the demo's rows, as it split them
    print(f"fusion head on {', '.join(meta['extractors'])}; {len(index)} photos")
    rows = []
    for tta in ('none', 'flip', 'multicrop'):
        t0 = time.perf_counter()
        extract_features(
            index, tta_extractors(checked_extractors(meta), tta), tmp / 'demo' / 'features.h5', progress=False
        )  # adds the views' features
        t1 = time.perf_counter()
        m = evaluate(ckpt, tmp / 'demo' / 'features.h5', tmp / f'report_{tta}', tta=tta, log=lambda s: None)
        rows.append((tta, m['seen_buildings_heldout_views']['map_at_r'], m['unseen_buildings']['map_at_r'], t1 - t0))
    print(
        "| tta | MAP@R seen, held-out views | MAP@R unseen buildings | extraction of the extra views (s) |\n|---|---|---|---|"
    )
    for tta, s, u, sec in rows:
        print(f"| {tta} | {s:.4f} | {u:.4f} | {sec:.1f} |")


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=30)
    main(**vars(ap.parse_args()))
