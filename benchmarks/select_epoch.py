"""How the epoch is chosen, and whether the head starts as the frozen features, measured on `bm-demo`'s data.

The data, features and training of `bm-demo` (40 synthetic buildings x 8 views, 10 buildings unseen, EfficientNet-Lite0
features, ProxyAnchor for 30 epochs), trained four ways: the epoch chosen on the validation split (held-out views of the
training buildings, `select='val'`) or on training buildings held out whole (`select='unseen'`), each with a plain and a
residual head. Reports the unseen buildings' MAP@R of each, beside the frozen features' (the numbers quoted on the `train`
page and in the README).

Usage: python benchmarks/select_epoch.py [--out /tmp/select] [--epochs 30]
"""

import argparse, json, tempfile
from pathlib import Path

from building_metric.config import TrainConfig
from building_metric.data.index import BuildingIndex
from building_metric.data.synth import write_synthetic
from building_metric.evaluation.report import evaluate, seen_unseen_split
from building_metric.features.cache import extract_features
from building_metric.jobs.train import train


def main(out: Path, epochs: int = 30, seed: int = 0) -> dict:
    write_synthetic(out / 'data', 'folders', n_identities=40, views=8, size=96, seed=seed)  # as bm-demo writes it
    index = seen_unseen_split(BuildingIndex.from_folder(out / 'data', progress=False), seed=seed)
    cache = extract_features(index, ['efficientnet_lite0'], out / 'features.h5', seed=seed, progress=False)
    rows = {}
    for select in ('val', 'unseen'):
        for residual in (0, 1):
            run = out / f'{select}_residual{residual}'
            train(
                TrainConfig(
                    data=str(cache),
                    out=str(run),
                    epochs=epochs,
                    lr=1e-2,
                    batch=32,
                    eval_every=10,
                    patience=0,
                    seed=seed,
                    residual=residual,
                    select=select,
                    log='none',
                ),
                log=lambda *a: None,
            )
            m = evaluate(run / 'models' / 'best.pth', cache, run / 'report', log=lambda *a: None)
            rows[f'select={select}, residual={residual}'] = m['unseen_buildings']['map_at_r']
            rows['frozen EfficientNet-Lite0 (standardised)'] = next(iter(m['frozen_features'].values()))[
                'unseen_buildings'
            ]['map_at_r']
    for k, v in rows.items():
        print(f"{k:45s} unseen buildings' MAP@R {v:.3f}")
    return rows


if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--out', default=None)
    p.add_argument('--epochs', type=int, default=30)
    a = p.parse_args()
    out = Path(a.out) if a.out else Path(tempfile.mkdtemp())
    print(json.dumps(main(out, a.epochs), indent=2))
