"""Re-ranking and benchmark protocols, measured in one run (the issue's baselines: no re-ranking, and the targets below):

1. `real`: the sample photographs (`data.photos`: 22 real photos, 8 strong random views each; 11 known with 5 gallery
   views, the other 11 unseen), frozen EfficientNet-Lite0 features and a weak global model (a tiny random ResNet):
   `search.answers.rerank_report` (MAP@R, P@1, known identified, unknown said unknown, ms per query) for each
   re-ranking against none;
2. `sv`: spatial verification of the top 10 at 640 px on one core (`workers=0`): ms per query (target <= 150);
3. `overhead`: aQE and DBA on a 200,000 x 128 gallery, 1,000 queries: the answer's search time with and without
   them (target: <= 1.10x);
4. `protocol`: `revisited_map` on 70 queries x 1,000,000 ranked database photos (target <= 10 s), and `vpr_recalls`.

5. `geo`: locating synthetic geo-tagged buildings (`bm-search`'s locate) with and without verification.

Usage: python benchmarks/rerank.py [--part real|sv|overhead|protocol|geo|all]
"""

import argparse, json, tempfile, time
from pathlib import Path

import numpy as np

from building_metric.search.answers import SHORTLIST

RERANKS = ('none', 'aqe', 'dba', 'aqe+dba', 'sv', 'aqe+sv')


def part_real(size=224, workers=2):
    "Each re-ranking on the sample photographs, with a strong global model (frozen EfficientNet-Lite0) and a weak one."
    from building_metric.data.photos import write_photo_views
    from building_metric.search import BuildingGallery, SearchModel
    from building_metric.search.answers import rerank_report
    from building_metric.weights import packaged_weights

    tmp = Path(tempfile.mkdtemp())
    parts = write_photo_views(tmp / 'photos', size=size)
    models = {'tiny random ResNet (a weak global model)': SearchModel.from_extractors('resnet', tiny=True)}
    if packaged_weights('efficientnet_lite0') is not None:
        models['frozen EfficientNet-Lite0'] = SearchModel.from_extractors('efficientnet_lite0')
    out = {}
    for name, m in models.items():
        g = BuildingGallery.build(m, tmp / 'photos' / 'gallery', tmp / name.split()[1], workers=workers, log=None)
        g.local_features(workers)  # (described once, as on a gallery's first verified search)
        out[name] = rerank_report(g, tmp / 'photos' / 'queries', RERANKS, workers=workers).round(4).to_dict()
    return dict(
        photos=f"{len(g)} gallery photos of {len(parts['known'])} known photos, the queries: 3 new views of each "
        f"known one and 8 of each of {len(parts['unseen'])} unseen ones, {size} px",
        results=out,
    )


def part_geo(n=24, views=6, size=256, workers=2):
    "Locating synthetic geo-tagged buildings with and without verification: median error in metres."
    from building_metric.data.index import BuildingIndex
    from building_metric.data.synth import write_synthetic
    from building_metric.search import BuildingGallery, SearchModel
    from building_metric.weights import packaged_weights

    tmp = Path(tempfile.mkdtemp())
    write_synthetic(tmp / 'geo', 'geo', n_identities=n, views=views, size=size, seed=0)
    geo = BuildingIndex.from_geo(tmp / 'geo').items.copy()
    view = geo.path.str.split('_').str[2].astype(int)
    cols = ['path', 'label', 'lat', 'lon']
    geo[view < 4][cols].to_csv(tmp / 'geo' / 'gallery.csv', index=False)
    geo[view >= 4][cols].to_csv(tmp / 'geo' / 'queries.csv', index=False)
    lite = packaged_weights('efficientnet_lite0') is not None
    m = SearchModel.from_extractors('efficientnet_lite0') if lite else SearchModel.from_extractors('resnet', tiny=True)
    g = BuildingGallery.build(m, tmp / 'geo' / 'gallery.csv', tmp / 'g', workers=workers, log=None)
    out = dict(model=m.source, photos=f"{n} buildings, 4 gallery views and 2 query views each, {size} px")
    for how in ('none', 'aqe', 'sv'):
        t = g.locate(tmp / 'geo' / 'queries.csv', rerank=how, workers=workers)
        out[how] = dict(
            median_error_m=float(t.error_m.median()),
            mean_error_m=float(t.error_m.mean()),
            within_radius=float((t.error_m <= t.error_radius_m).mean()),
        )
    return out


def part_sv(side=640, n=20):
    "Verification of 10 candidates per query at 640 px, in this process (one core): ms per query."
    import cv2

    cv2.setNumThreads(1)
    from building_metric.data.photos import photo_views, sample_photos
    from building_metric.search.rerank import LocalFeatures, verify

    tmp = Path(tempfile.mkdtemp())
    ph = sample_photos()
    names = sorted(ph)[:11]
    paths = {}
    for i, nm in enumerate(names):
        for v, im in enumerate(photo_views(ph[nm], 2, 1000 * i, side)):
            paths[nm, v] = tmp / f'{nm}_{v}.jpg'
            im.save(paths[nm, v], quality=92)
    gal = [paths[nm, 0] for nm in names]
    store = LocalFeatures(tmp).ensure(gal, workers=2)
    qs = [paths[nm, 1] for nm in names][:n]
    inl, ms = verify(qs, [gal[:10]] * len(qs), store, workers=0)
    return dict(
        side_px=side,
        candidates=10,
        queries=len(qs),
        ms_per_query_median=float(np.median(ms)),
        ms_per_query_mean=float(ms.mean()),
        target_ms=150,
    )


def part_overhead(n=200_000, d=128, m=1000, k=10):
    from building_metric.retrieval.index import ExactIndex
    from building_metric.search.rerank import database_augment, rerank_shortlist

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((n // 20, d)).astype(np.float32)
    g = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.standard_normal((n, d)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    q = g[rng.choice(n, m, replace=False)] + 0.1 * rng.standard_normal((m, d)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ix = ExactIndex(g)
    t0 = time.perf_counter()
    dba = database_augment(g, ix)
    t_dba_build = time.perf_counter() - t0
    times = {}
    for how in ('none', 'aqe', 'dba', 'aqe+dba'):
        best = []
        for _ in range(3):
            t0 = time.perf_counter()
            s, j = ix.search(q, k if how == 'none' else SHORTLIST)
            if how != 'none':
                rerank_shortlist(q, j, g, tuple(how.split('+')), sims=s, dba=dba)
            best.append(time.perf_counter() - t0)
        times[how] = float(np.median(best))
    return dict(
        gallery=f"{n:,} x {d}",
        queries=m,
        seconds=times,
        ratio_to_none={h: times[h] / times['none'] for h in times},
        dba_build_seconds=t_dba_build,
        target_ratio=1.10,
    )


def part_protocol(n_db=1_000_000, n_q=70):
    from building_metric.evaluation.protocols import revisited_map, vpr_recalls

    rng = np.random.default_rng(0)
    ranks = np.empty((n_db, n_q), np.int32)
    for i in range(n_q):
        ranks[:, i] = rng.permutation(n_db)
    gnd = [
        dict(
            easy=rng.choice(n_db, 50, replace=False),
            hard=rng.choice(n_db, 50, replace=False),
            junk=rng.choice(n_db, 30, replace=False),
        )
        for _ in range(n_q)
    ]
    t0 = time.perf_counter()
    r = revisited_map(ranks, gnd)
    t_map = time.perf_counter() - t0
    db = rng.uniform(0, 10_000, (n_db, 2))
    qq = rng.uniform(0, 10_000, (1000, 2))
    pred = rng.integers(0, n_db, (1000, 20))
    t0 = time.perf_counter()
    vpr_recalls(pred, db, qq)
    t_vpr = time.perf_counter() - t0
    return dict(
        revisited_map_seconds=t_map,
        shape=f"{n_q} queries x {n_db:,} ranked",
        target_seconds=10,
        medium_map_random=r['medium']['map'],
        vpr_recalls_seconds_1000_queries_1M_db=t_vpr,
    )


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--part', default='all')
    a = ap.parse_args()
    parts = dict(protocol=part_protocol, overhead=part_overhead, sv=part_sv, real=part_real, geo=part_geo)
    for name, fn in parts.items():
        if a.part in (name, 'all'):
            print(json.dumps({name: fn()}, indent=2, default=float), flush=True)
