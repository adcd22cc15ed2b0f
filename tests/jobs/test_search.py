"`bm-index` and `bm-search` end to end on synthetic geo-tagged buildings: killed and resumed, stale galleries refused, bad query files skipped, photos added."

import json, shutil, subprocess

import numpy as np
import pandas as pd
import torch

from building_metric.data.index import BuildingIndex, load_image
from building_metric.data.synth import write_synthetic
from building_metric.search import BuildingGallery

from conftest import kill_when, one_line_error, run, spawn


def _train(tmp_path, data, out, seed=0):
    r = run(
        'bm-train',
        '--data',
        data,
        '--resnet',
        '1',
        '--vit',
        '1',
        '--tiny',
        '1',
        '--epochs',
        '2',
        '--lr',
        '0.01',
        '--batch',
        '16',
        '--eval_every',
        '5',
        '--patience',
        '0',
        '--split',
        'class',
        '--workers',
        '0',
        '--log',
        'none',
        '--seed',
        seed,
        '--out',
        out,
        '--cache',
        out.with_suffix('.h5'),
    )
    assert r.returncode == 0, r.stderr


def _emb(g):
    gal = BuildingGallery(g)
    return np.asarray(gal.emb), gal.rows.path.to_numpy()


def test_index_kill_resume_search(tmp_path):
    write_synthetic(tmp_path / 'geo', 'geo', n_identities=16, views=5, size=64, seed=0)
    rows = BuildingIndex.from_geo(tmp_path / 'geo').items
    b = rows.label.str.split('_').str[1].astype(int)
    rows[b < 12][['path', 'label', 'lat', 'lon']].to_csv(tmp_path / 'geo' / 'known.csv', index=False)
    _train(tmp_path, tmp_path / 'geo' / 'known.csv', tmp_path / 'run')
    args = [
        '--run',
        tmp_path / 'run',
        '--gallery',
        tmp_path / 'geo' / 'known.csv',
        '--bs',
        '2',
        '--workers',
        '1',
        '--shard_rows',
        '4',
    ]

    whole = run('bm-index', *args, '--out', tmp_path / 'g1')
    assert whole.returncode == 0, whole.stderr
    summary = json.loads(whole.stdout[whole.stdout.index('{') :])
    assert summary['photos'] == 60 and summary['buildings'] == 12 and summary['kind'] == 'exact'

    shards = lambda a: len(
        list((tmp_path / f'g2_{a}' / 'features' / 'base.h5.parts' / 'resnet').glob('0*.npy'))
    )  # killed part-way through the extraction
    a = kill_when(
        lambda a: spawn(
            'bm-index', *args, '--out', tmp_path / f'g2_{a}', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        ),
        lambda a: shards(a) >= 3,
    )
    g2 = tmp_path / f'g2_{a}'
    assert not (g2 / 'gallery.json').exists()
    r = run('bm-index', *args, '--out', g2)
    assert r.returncode == 0, r.stderr
    (e1, p1), (e2, p2) = _emb(tmp_path / 'g1'), _emb(g2)
    assert np.array_equal(e1, e2) and list(p1) == list(p2)  # the same gallery as an uninterrupted run

    q = tmp_path / 'q'
    q.mkdir()  # two known buildings' photos, one unseen one's, one broken file
    for f in sorted((tmp_path / 'geo').glob('001_000[0-1]_000[0-1]_0.jpg')) + sorted(
        (tmp_path / 'geo').glob('001_0013_0000_0.jpg')
    ):
        shutil.copy(f, q / f.name)
    (q / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a jpeg')
    s = run(
        'bm-search',
        '--gallery',
        tmp_path / 'g1',
        '--query',
        q,
        '--out',
        tmp_path / 'res',
        '--k',
        '5',
        '--pictures',
        '2',
        '--explain',
        '1',
        '--workers',
        '0',
    )
    assert s.returncode == 0, s.stderr
    assert 'skipped' in s.stderr and 'broken.jpg' in s.stderr  # (what a job prints goes to stderr: stdout is its JSON)
    t = pd.read_csv(tmp_path / 'res' / 'results.csv')
    assert len(t) == 5 and 'broken.jpg' not in ' '.join(t['query'])
    assert {'building', 'confidence', 'knn_building', 'lat', 'lon', 'error_radius_m', 'top1_path'} <= set(t.columns)
    j = json.loads((tmp_path / 'res' / 'results.json').read_text())
    assert (
        j['summary']['skipped'] == 1
        and j['skipped'][0]['path'].endswith('broken.jpg')
        and len(j['queries'][0]['matches']) == 5
    )
    assert (
        len(list((tmp_path / 'res' / 'pictures').glob('*.png'))) == 3
        and len(list((tmp_path / 'res' / 'pictures').glob('*_why.png'))) == 1
    )

    shutil.copytree(
        tmp_path / 'run' / 'models', tmp_path / 'run2' / 'models'
    )  # another model: the same run, one weight changed
    sd = torch.load(tmp_path / 'run2' / 'models' / 'best.pth', weights_only=True)
    k = next(k for k, v in sd.items() if v.is_floating_point())
    sd[k] = sd[k] + 1e-3
    torch.save(sd, tmp_path / 'run2' / 'models' / 'best.pth')
    stale = run(
        'bm-search', '--gallery', tmp_path / 'g1', '--query', q, '--run', tmp_path / 'run2', '--out', tmp_path / 'res2'
    )
    assert one_line_error(stale, 'bm-search') and 'embedded by another model' in stale.stderr, stale.stderr
    over = run(
        'bm-index', '--run', tmp_path / 'run2', '--gallery', tmp_path / 'geo' / 'known.csv', '--out', tmp_path / 'g1'
    )
    assert one_line_error(over, 'bm-index') and '--rebuild' in over.stderr, over.stderr
    assert np.array_equal(_emb(tmp_path / 'g1')[0], e1)  # and nothing was lost

    new = tmp_path / 'new'
    new.mkdir()  # --add: only photos not in the gallery are embedded
    for f in sorted((tmp_path / 'geo').glob('001_0014_*_0.*')):
        shutil.copy(f, new / f.name)
    for f in sorted((tmp_path / 'geo').glob('001_0000_0000_0.*')):
        shutil.copy(f, new / f.name)
    a = run('bm-index', '--run', tmp_path / 'run', '--out', tmp_path / 'g1', '--add', new, '--workers', '0')
    assert a.returncode == 0, a.stderr
    assert (
        json.loads(a.stdout[a.stdout.index('{') :])['added'] == 5 + 1
    )  # (the copy of a gallery photo has another path)
    e3, p3 = _emb(tmp_path / 'g1')
    assert len(e3) == 66 and np.array_equal(e3[:60], e1)


def test_search_bad_input(tmp_path, monkeypatch):
    monkeypatch.chdir((tmp_path / 'cwd').mkdir() or tmp_path / 'cwd')  # where a default --out would go
    r = run('bm-search', '--gallery', tmp_path / 'nowhere', '--query', tmp_path)
    assert one_line_error(r, 'bm-search') and 'no gallery at' in r.stderr, r.stderr
    r = run('bm-index', '--gallery', tmp_path)
    assert one_line_error(r, 'bm-index') and 'needs a model: --run' in r.stderr, r.stderr
    r = run('bm-index', '--add', tmp_path)
    assert one_line_error(r, 'bm-index') and 'gallery' in r.stderr, r.stderr
    assert not any((tmp_path / 'cwd').iterdir())  # refused before any work: no 'gallery' folder (or lock) left behind
    r = run('bm-index', '--run', tmp_path, '--gallery', tmp_path, '--kind', 'annoy')
    assert one_line_error(r, 'bm-index') and "--kind 'annoy' is not allowed" in r.stderr, r.stderr


def test_frozen_gallery_from_the_shell(tmp_path):
    "`bm-index --extractors`: a gallery on frozen pretrained features, no training; `bm-search` answers from it alone (the model rebuilt from the gallery)."
    from building_metric.core import seed_everything
    from building_metric.features.extractors import create_extractor
    from building_metric.search import BuildingGallery, SearchModel

    photos = write_synthetic(tmp_path / 'photos', 'folders', n_identities=5, views=4, size=64, seed=0)
    new = tmp_path / 'new'
    for b in sorted(p for p in photos.iterdir() if p.is_dir()):
        (new / b.name).mkdir(parents=True)
        last = sorted(b.iterdir())[-1]
        last.rename(new / b.name / last.name)
    r = run(
        'bm-index',
        '--extractors',
        'resnet',
        '--tiny',
        '1',
        '--gallery',
        photos,
        '--out',
        tmp_path / 'g',
        '--workers',
        '0',
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout[r.stdout.index('{') :])['photos'] == 15
    s = run(
        'bm-search',
        '--gallery',
        tmp_path / 'g',
        '--query',
        new,
        '--out',
        tmp_path / 'res',
        '--workers',
        '0',
        '--pictures',
        '0',
    )
    assert s.returncode == 0, s.stderr
    csv = pd.read_csv(tmp_path / 'res' / 'results.csv', keep_default_na=False)
    g = BuildingGallery(
        tmp_path / 'g', SearchModel.from_extractors('resnet', tiny=True)
    )  # the same weights (checked by fingerprint)
    t, _, _ = g.answer(new, workers=0)
    assert csv.building.tolist() == t.building.tolist() and csv.nearest_building.tolist() == t.nearest_building.tolist()
    seed_everything(0)
    ext = create_extractor('resnet', pretrained=False, tiny=True)  # the embeddings: its L2-normalised features
    with torch.no_grad():
        f = torch.nn.functional.normalize(ext(torch.stack([ext.preprocess(load_image(p)) for p in g.rows.path])), dim=1)
    np.testing.assert_allclose(g.emb, f.numpy(), atol=1e-5)
    both = run('bm-index', '--extractors', 'resnet', '--run', tmp_path, '--gallery', photos, '--out', tmp_path / 'g2')
    assert one_line_error(both, 'bm-index') and 'not both' in both.stderr, both.stderr
    offline = run(
        'bm-index', '--extractors', 'resnet', '--gallery', photos, '--out', tmp_path / 'g3'
    )  # pretrained weights not here
    assert one_line_error(offline, 'bm-index') and 'cannot load pretrained weights' in offline.stderr, offline.stderr
    assert not (tmp_path / 'g3').exists()  # refused before any work


def test_threshold_flags(tmp_path):
    "`bm-search --threshold` / `--target_far`: the threshold used, its rates on the gallery's calibration, and each answer's margin."
    from building_metric.search import BuildingGallery

    photos = write_synthetic(tmp_path / 'photos', 'folders', n_identities=6, views=5, size=48, seed=0)
    new = write_synthetic(
        tmp_path / 'new', 'folders', n_identities=8, views=1, size=48, seed=0
    )  # 6 known buildings, 2 unknown
    r = run(
        'bm-index',
        '--extractors',
        'resnet',
        '--tiny',
        '1',
        '--gallery',
        photos,
        '--out',
        tmp_path / 'g',
        '--workers',
        '0',
    )
    assert r.returncode == 0 and 'open-set threshold' in r.stderr, r.stderr
    g = BuildingGallery(tmp_path / 'g')
    s = g.calibration['scores']
    for flags in (['--threshold', '0.9'], ['--target_far', '0.2'], []):
        o = run(
            'bm-search',
            '--gallery',
            tmp_path / 'g',
            '--query',
            new,
            '--out',
            tmp_path / 'res',
            '--workers',
            '0',
            '--pictures',
            '0',
            *flags,
        )
        assert o.returncode == 0, o.stderr
        summary = json.loads((tmp_path / 'res' / 'results.json').read_text())['summary']['threshold']
        th = summary['threshold']
        if flags[:1] == ['--threshold']:
            assert th == 0.9
        elif flags:
            assert np.mean(np.array(s['unknown']) >= th) <= 0.2  # at most 20% of the calibration's unknowns accepted
        else:
            assert th == g.calibration['threshold']
        assert f"open-set threshold {th:.3f}" in o.stderr
        assert (
            abs(summary['far'] - np.mean(np.array(s['unknown']) >= th)) < 1e-12
            and abs(summary['frr'] - np.mean(np.array(s['known']) < th)) < 1e-12
        )
        t = pd.read_csv(tmp_path / 'res' / 'results.csv', keep_default_na=False)
        assert ((t.building == 'unknown') == (t.best_similarity < th)).all()  # unknown exactly below the threshold
        np.testing.assert_allclose(t.threshold_margin, t.best_similarity - th, atol=1e-9)
    both = run(
        'bm-search',
        '--gallery',
        tmp_path / 'g',
        '--query',
        new,
        '--out',
        tmp_path / 'res2',
        '--threshold',
        '0.5',
        '--target_far',
        '0.1',
    )
    assert one_line_error(both, 'bm-search') and 'both given' in both.stderr
