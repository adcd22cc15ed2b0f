"""Search answers checked against an independent computation written here (plain numpy, loops where that is clearer):
which building (nearest class mean) or `unknown`, the confidence, the vote of the nearest photos, the position and its
error radius; then `bm-search`'s results.csv against the Python API row by row, through an ONNX-exported model."""

import json, math

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import building_metric
from building_metric.data.index import BuildingIndex, load_image
from building_metric.data.synth import write_synthetic
from building_metric.features.cache import FORMAT, FORMAT_VERSION
from building_metric.features.extractors import Extractor, Preprocess
from building_metric.search import BuildingGallery, SearchModel

from conftest import run


# ---- the reference: what the answers must be, computed from the gallery's embeddings alone -------------------------
def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def softmax(s, t):
    z = np.exp((s - s.max(-1, keepdims=True)) / t)
    return z / z.sum(-1, keepdims=True)


def reference_identify(gallery_emb, gallery_labels, q, threshold, t, k):
    "Nearest class mean (means of the unit embeddings, made unit), its softmax probability, the unknown rule, and the weighted kNN vote."
    names = sorted(set(gallery_labels))
    means = unit(np.stack([gallery_emb[np.asarray(gallery_labels) == n].astype(np.float64).mean(0) for n in names]))
    sims = q.astype(np.float64) @ means.T
    probs = softmax(sims, t)
    out = []
    for s, p, qi in zip(sims, probs, q.astype(np.float64)):
        b = int(np.argmax(s))
        nn_sims = gallery_emb.astype(np.float64) @ qi
        top = np.argsort(-nn_sims, kind='stable')[:k]
        w = softmax(nn_sims[top][None], t)[0]
        votes = {}
        for j, wj in zip(top, w):
            votes[gallery_labels[j]] = votes.get(gallery_labels[j], 0.0) + wj
        knn = max(votes, key=votes.get)
        out.append(
            dict(
                nearest=names[b],
                best_similarity=s[b],
                confidence=p[b],
                probs_sum=p.sum(),
                building=names[b] if s[b] >= threshold else 'unknown',
                knn=knn,
                knn_share=votes[knn] / sum(votes.values()),
            )
        )
    return pd.DataFrame(out)


def haversine_km(a, b):
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = math.sin((la2 - la1) / 2) ** 2 + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(min(1.0, h)))


def reference_locate(gallery_emb, coords, q, t, k, inlier_km):
    "The neighbour with most similarity weight within `inlier_km` of it; the weighted mean on the sphere of the neighbours near it."
    out = []
    for qi in q.astype(np.float64):
        s = gallery_emb.astype(np.float64) @ qi
        top = np.argsort(-s, kind='stable')[:k]
        w = softmax(s[top][None], t)[0]
        c = coords[top]
        support = [sum(w[j] for j in range(k) if haversine_km(c[i], c[j]) <= inlier_km) for i in range(k)]
        best = int(np.argmax(support))
        v = np.zeros(3)
        for j in range(k):
            if haversine_km(c[best], c[j]) <= inlier_km:
                la, lo = map(math.radians, c[j])
                v += w[j] * np.array([math.cos(la) * math.cos(lo), math.cos(la) * math.sin(lo), math.sin(la)])
        lat, lon = math.degrees(math.asin(v[2] / np.linalg.norm(v))), math.degrees(math.atan2(v[1], v[0]))
        spread = sum(w[j] * haversine_km(c[j], (lat, lon)) for j in range(k)) / w.sum()
        out.append(dict(lat=lat, lon=lon, spread_km=spread))
    return pd.DataFrame(out)


# ---- a gallery whose right answers are known by construction ----------------------------------------------------------
DIM, K = 24, 5


class Vectors(nn.Module):
    "Stands for a backbone: the gallery below is given as a feature cache, so only its name and weights hash matter."

    def __init__(self):
        super().__init__()
        self.register_buffer('tag', torch.arange(3.0))


def write_cache(path, feats, labels, coords):
    "A feature cache in the layout `extract_features` writes, holding the given features."
    s, names = h5py.string_dtype(), sorted(set(labels))
    with h5py.File(path, 'w') as f:
        f.attrs.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            library_version=building_metric.__version__,
            fingerprint='test',
            n_rows=len(feats),
        )
        f['rows/path'] = np.array([f"{l}/{i}.png" for i, l in enumerate(labels)], dtype=object).astype(s)
        f['rows/label'] = np.array([names.index(l) for l in labels], np.int32)
        f['rows/group'] = np.array(labels, dtype=object).astype(s)
        f['rows/lat'], f['rows/lon'] = coords[:, 0], coords[:, 1]
        f['rows/split'] = np.array(['train'] * len(feats), dtype=object).astype(s)
        f['label_names'] = np.array(names, dtype=object).astype(s)
        ds = f.create_dataset('features/vec', data=feats.astype(np.float32), chunks=(len(feats), feats.shape[1]))
        ds.attrs.update(name='vec', identity='{}', info='{}')
    return path


@pytest.fixture(scope='module')
def known(tmp_path_factory):
    "Ten buildings, six photos each, in 24 dimensions; buildings 8 and 9 are look-alikes (their centres 0.2 apart)."
    rng = np.random.default_rng(0)
    centres = unit(rng.normal(size=(10, DIM)))
    centres[9] = unit(centres[8] + 0.2 * unit(rng.normal(size=DIM)))
    lab = np.repeat([f'b{i}' for i in range(10)], 6)
    codes = np.repeat(np.arange(10), 6)
    feats = unit(centres[codes] + 0.12 * rng.normal(size=(60, DIM)))
    sites = np.c_[48.85 + 0.01 * np.arange(10), 2.35 + 0.013 * np.arange(10)]  # about a kilometre apart
    coords = sites[codes] + rng.normal(scale=0.0012, size=(60, 2))  # photos within ~150 m of their building
    root = tmp_path_factory.mktemp('answers')
    cache = write_cache(root / 'gallery.h5', feats, list(lab), coords)
    model = SearchModel(
        [
            Extractor(
                'vec', Vectors(), lambda m, x: x, DIM, preprocess=Preprocess(8), model_id='vectors', pretrained=False
            )
        ],
        None,
        'vectors',
    )
    g = BuildingGallery.build(model, cache, root / 'gallery', log=None)
    # queries: new photos of each building; points drawn from a building towards random directions, whose best building
    # similarity spans the open-set threshold; photos between the look-alikes; photos of no building at all
    mix = np.linspace(0.05, 0.95, 20)[:, None]
    q = np.concatenate(
        [
            unit(centres[codes[::3]] + 0.12 * rng.normal(size=(20, DIM))),
            unit((1 - mix) * centres[rng.integers(0, 10, 20)] + mix * unit(rng.normal(size=(20, DIM)))),
            unit(centres[8] + centres[9] + 0.1 * rng.normal(size=(6, DIM))),
            unit(rng.normal(size=(8, DIM))),
        ]
    ).astype(np.float32)
    return dict(
        g=g, q=q, emb=g.emb, labels=g.rows.label.tolist(), coords=g.rows[['lat', 'lon']].to_numpy(float), truth=lab[::3]
    )


def test_gallery_holds_the_features_as_unit_embeddings(known):
    g = known['g']
    assert g.emb.shape == (60, DIM) and np.allclose(np.linalg.norm(g.emb, axis=1), 1, atol=1e-6)
    assert g.rows.label.tolist() == list(np.repeat([f'b{i}' for i in range(10)], 6))


def test_identify_equals_the_nearest_class_mean_and_its_softmax(known):
    g, q = known['g'], known['q']
    c = g.calibration
    a = g.identify(q, k=K)
    ref = reference_identify(known['emb'], known['labels'], q, c['threshold'], c['temperature'], K)
    assert a.nearest_building.tolist() == ref.nearest.tolist()
    np.testing.assert_allclose(a.best_similarity, ref.best_similarity, atol=1e-6)
    np.testing.assert_allclose(a.confidence, ref.confidence, atol=1e-6)  # the probability of the chosen building ...
    np.testing.assert_allclose(ref.probs_sum, 1, atol=1e-12)  # ... in a distribution over the buildings
    assert a.building.tolist() == ref.building.tolist()
    truth = known['truth']  # new photos of known buildings: right, but
    assert (a.nearest_building[:16] == truth[:16]).all()  # between the look-alikes (b8, b9) one or the other
    assert set(a.nearest_building[16:20]) <= {'b8', 'b9'}
    assert a.building.iloc[-8:].eq('unknown').all()  # photos of no building: all unknown


def test_unknown_exactly_below_the_threshold(known):
    "`unknown` where the best building's similarity is below the stored threshold, and only there; the queries span it."
    g, q = known['g'], known['q']
    a = g.identify(q, k=K)
    ref = reference_identify(
        known['emb'], known['labels'], q, g.calibration['threshold'], g.calibration['temperature'], K
    )
    below = ref.best_similarity.to_numpy() < g.calibration['threshold']
    assert 5 <= below.sum() <= len(q) - 5, below.sum()  # both sides of the threshold are exercised
    np.testing.assert_array_equal(a.building.eq('unknown').to_numpy(), below)
    near = np.abs(ref.best_similarity - g.calibration['threshold']) < 0.1  # and close to it, on both sides
    assert (near & below).sum() >= 2 and (near & ~below).sum() >= 2


def test_knn_vote_equals_the_weighted_vote(known):
    g, q = known['g'], known['q']
    a = g.identify(q, k=K)
    ref = reference_identify(
        known['emb'], known['labels'], q, g.calibration['threshold'], g.calibration['temperature'], K
    )
    assert a.knn_building.tolist() == ref.knn.tolist()
    np.testing.assert_allclose(a.knn_share, ref.knn_share, atol=1e-5)  # (the index's similarities are float32)
    look = slice(40, 46)  # between the look-alikes: one of the two
    assert set(a.nearest_building[look]) <= {'b8', 'b9'} and set(a.knn_building[look]) <= {'b8', 'b9'}


def test_locate_equals_the_weighted_position_of_the_neighbours(known):
    g, q = known['g'], known['q']
    geo = g.calibration['geo']
    loc = g.locate(q, k=K)
    ref = reference_locate(known['emb'], known['coords'], q, g.calibration['temperature'], geo['k'], geo['inlier_km'])
    err = [haversine_km((a, b), (c, d)) * 1000 for a, b, c, d in zip(loc.lat, loc.lon, ref.lat, ref.lon)]
    assert max(err) < 0.01, max(err)  # within a centimetre
    np.testing.assert_allclose(loc.spread_km, ref.spread_km, atol=1e-5)  # (float32 similarities: within a centimetre)
    radius = np.array(geo['radius_km'])[np.searchsorted(geo['spread_edges_km'], ref.spread_km)] * 1000
    np.testing.assert_allclose(loc.error_radius_m, radius, rtol=1e-9)
    unweighted = [np.mean(known['coords'][np.argsort(-(known['emb'] @ qi), kind='stable')[: geo['k']]], 0) for qi in q]
    moved = [haversine_km(p, (a, b)) * 1000 for p, a, b in zip(unweighted, ref.lat, ref.lon)]
    assert np.median(moved) > 5, np.median(moved)  # the weights matter here: metres, not rounding


def test_answer_is_identify_and_locate_and_search_in_one(known):
    g, q = known['g'], known['q']
    t, matches, skipped = g.answer(q, k=K)
    ident, loc, hits = g.identify(q, k=K), g.locate(q, k=K), g.search(q, k=K)
    assert not len(skipped) and len(matches) == len(q) * K
    pd.testing.assert_frame_equal(t[ident.columns], ident)
    pd.testing.assert_frame_equal(t[loc.columns], loc)
    np.testing.assert_allclose(matches.similarity, hits.similarity)
    assert matches.path.tolist() == hits.path.tolist()
    best = np.argmax(known['emb'] @ q.T, axis=0)  # the best match: the most similar photo
    assert t.top1_path.tolist() == g.rows.path.to_numpy()[best].tolist()
    np.testing.assert_allclose(t.top1_similarity, (known['emb'] @ q.T).max(0), atol=1e-6)


# ---- photos through an ONNX export: bm-search's file against the Python API, and the answers against the reference ----
def test_bm_search_results_equal_the_api_through_onnx(tmp_path):
    from building_metric.core import seed_everything
    from building_metric.metric.export import export_onnx
    from building_metric.metric.heads import Embedder

    photos = write_synthetic(tmp_path / 'photos', 'folders', n_identities=6, views=5, size=64, seed=0)
    new = tmp_path / 'new'
    for b in sorted(p for p in photos.iterdir() if p.is_dir()):  # two views of each building kept aside ...
        for p in sorted(b.iterdir())[-2:]:
            (new / b.name).mkdir(parents=True, exist_ok=True)
            p.rename(new / b.name / p.name)
    (new / 'bldg_0005').rename(tmp_path / 'unseen')
    (photos / 'bldg_0005').rename(new / 'bldg_0005')  # ... and one building unseen
    seed_everything(0)
    net = Embedder('resnet18', emb_dim=32, pretrained=False, layers=[1, 1, 1, 1]).eval()
    net.preprocess = Preprocess(64)
    export_onnx(net, tmp_path / 'model.onnx')
    g = BuildingGallery.build(tmp_path / 'model.onnx', photos, tmp_path / 'gallery', workers=0, log=None)
    r = run(
        'bm-search',
        '--gallery',
        tmp_path / 'gallery',
        '--query',
        new,
        '--out',
        tmp_path / 'res',
        '--k',
        K,
        '--workers',
        '0',
        '--pictures',
        '0',
    )
    assert r.returncode == 0, r.stderr
    csv = pd.read_csv(tmp_path / 'res' / 'results.csv', keep_default_na=False)
    t, matches, _ = g.answer(new, k=K, workers=0)
    assert len(csv) == len(t) == 5 * 2 + 3
    assert list(csv.columns) == list(t.columns)
    for col in t.columns:  # row by row, column by column
        if t[col].dtype.kind == 'f':
            np.testing.assert_allclose(csv[col].astype(float), t[col], rtol=1e-6, err_msg=col)
        else:
            assert csv[col].astype(str).tolist() == t[col].astype(str).tolist(), col
    rj = json.loads((tmp_path / 'res' / 'results.json').read_text())
    assert [m['path'] for m in rj['queries'][0]['matches']] == matches[matches['query'] == t['query'][0]].path.tolist()
    assert rj['summary']['unknown'] == int((t.building == 'unknown').sum()) and rj['summary'][
        'accuracy'
    ] == pytest.approx(t.correct.mean())

    e, rows = g.embed(new, workers=0)  # the ONNX graph embeds as the torch model does
    x = torch.stack([net.preprocess(load_image(p)) for p in rows.path])
    with torch.no_grad():
        np.testing.assert_allclose(e, torch.nn.functional.normalize(net(x), dim=1).numpy(), atol=1e-4)
    c = g.calibration
    ref = reference_identify(g.emb, g.rows.label.tolist(), e, c['threshold'], c['temperature'], K)
    assert csv.nearest_building.tolist() == ref.nearest.tolist() and csv.building.tolist() == ref.building.tolist()
    assert csv.knn_building.tolist() == ref.knn.tolist()
    np.testing.assert_allclose(csv.confidence, ref.confidence, atol=1e-5)
    truth = rows.label.tolist()  # `correct`: the right building, or unknown for the unseen one
    want = [b == y if y != 'bldg_0005' else b == 'unknown' for b, y in zip(ref.building, truth)]
    assert csv.correct.tolist() == want
