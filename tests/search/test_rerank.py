"Re-ranking from the shell: `bm-index --dba 1`, `bm-search --rerank dba|sv`, checked against the API and an independent count of the verified inliers."

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import run

import os

cv2 = __import__('cv2') if os.environ.get('BUILDING_METRIC_REQUIRE') == '1' else pytest.importorskip('cv2')


def _warp(im: Image.Image, seed: int, side: int = 320) -> Image.Image:
    "A view of the photo from elsewhere: a random homography and a change of light."
    rng = np.random.default_rng(seed)
    a = np.asarray(im.convert('RGB').resize((side, side)))
    src = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    dst = (src + rng.uniform(-0.12, 0.12, (4, 2)) * side).astype(np.float32)
    w = cv2.warpPerspective(a, cv2.getPerspectiveTransform(src, dst), (side, side), borderMode=cv2.BORDER_REFLECT)
    return Image.fromarray(np.clip(w * rng.uniform(0.7, 1.2), 0, 255).astype(np.uint8))


def test_rerank_from_the_shell(tmp_path):
    from skimage import data as skd
    from building_metric.search import BuildingGallery, SearchModel
    from building_metric.search.rerank import count_inliers, local_features

    photos = {
        n: Image.fromarray(getattr(skd, n)()) for n in ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'brick')
    }
    known = ['astronaut', 'coffee', 'chelsea', 'rocket']
    for i, (n, im) in enumerate(photos.items()):
        for v in range(3) if n in known else [2]:  # views 0, 1 in the gallery; view 2 of each photo a query
            part = 'gallery' if v < 2 else 'queries'
            (tmp_path / part / n).mkdir(parents=True, exist_ok=True)
            _warp(im, 10 * i + v).save(tmp_path / part / n / f'{v}.jpg', quality=92)
    r = run(
        'bm-index',
        '--extractors',
        'resnet',
        '--tiny',
        '1',
        '--gallery',
        tmp_path / 'gallery',
        '--out',
        tmp_path / 'g',
        '--workers',
        '0',
        '--dba',
        '1',
    )
    assert r.returncode == 0, r.stderr
    assert (tmp_path / 'g' / 'dba.npy').is_file()
    g = BuildingGallery(tmp_path / 'g', SearchModel.from_extractors('resnet', tiny=True))
    for how in ('dba', 'sv'):
        s = run(
            'bm-search',
            '--gallery',
            tmp_path / 'g',
            '--query',
            tmp_path / 'queries',
            '--out',
            tmp_path / how,
            '--workers',
            '0',
            '--pictures',
            '0',
            '--rerank',
            how,
        )
        assert s.returncode == 0, s.stderr
        csv = pd.read_csv(tmp_path / how / 'results.csv', keep_default_na=False)
        assert set(csv.rerank) == {how}
        t, m, _ = g.answer(tmp_path / 'queries', rerank=how, workers=0)
        assert csv.top1_path.tolist() == t.top1_path.tolist() and csv.building.tolist() == t.building.tolist()
    seen = csv[csv.true_building.isin(known)]
    # every view of a known photo is verified against a view of it, whatever the (random, tiny) global features said
    assert (seen.top1_path.map(lambda p: p.split('/')[-2]) == seen.true_building).all(), seen
    assert (seen.building == seen.true_building).all()
    for _, row in csv.iterrows():  # the inliers, counted again here from the two photos
        assert row.top1_inliers == count_inliers(local_features(row['query']), local_features(row.top1_path))
    summary = json.loads((tmp_path / 'sv' / 'results.json').read_text())['summary']
    assert summary['rerank'] == 'sv' and summary['sv_ms_per_query'] > 0
    bad = run(
        'bm-search',
        '--gallery',
        tmp_path / 'g',
        '--query',
        tmp_path / 'queries',
        '--out',
        tmp_path / 'x',
        '--rerank',
        'qe',
    )
    assert bad.returncode != 0 and "--rerank 'qe' is not allowed" in bad.stderr


def test_locate_weighs_verified_neighbours(tmp_path):
    "With rerank='sv', a location is the softmax-weighted position of the re-ranked neighbours, verified ones lifted by their bonus."
    from skimage import data as skd
    from building_metric.geo import haversine_km, locate_from_neighbours
    from building_metric.search import BuildingGallery, SearchModel
    from building_metric.retrieval.calibration import probabilities

    names = ('astronaut', 'coffee', 'chelsea', 'rocket')
    rows = {'gallery': [], 'queries': []}
    for i, n in enumerate(names):  # four places about a kilometre apart, each photographed from a few metres around
        lat, lon = 45.50 + 0.01 * i, -73.56 + 0.004 * (i % 2)
        for v in range(4):
            part = 'gallery' if v < 3 else 'queries'
            p = tmp_path / 'photos' / f'{n}_{v}.jpg'
            p.parent.mkdir(exist_ok=True)
            _warp(Image.fromarray(getattr(skd, n)()), 10 * i + v).save(p, quality=92)
            rows[part].append(dict(path=p.name, label=n, lat=lat + 2e-5 * v, lon=lon - 2e-5 * v))
    for part, r in rows.items():
        pd.DataFrame(r).to_csv(tmp_path / 'photos' / f'{part}.csv', index=False)
    r = run(
        'bm-index',
        '--extractors',
        'resnet',
        '--tiny',
        '1',
        '--gallery',
        tmp_path / 'photos' / 'gallery.csv',
        '--out',
        tmp_path / 'g',
        '--workers',
        '0',
    )
    assert r.returncode == 0, r.stderr
    g = BuildingGallery(tmp_path / 'g', SearchModel.from_extractors('resnet', tiny=True))
    geo = g.calibration['geo']
    loc = {how: g.locate(tmp_path / 'photos' / 'queries.csv', rerank=how, workers=0) for how in ('none', 'sv')}
    _, m, _ = g.answer(tmp_path / 'photos' / 'queries.csv', k=geo['k'], rerank='sv', workers=0)
    for q, mq in m.groupby(
        'query', sort=False
    ):  # the estimate, computed here from the re-ranked matches and their scores
        mq = mq.sort_values('rank')
        est, _ = locate_from_neighbours(
            mq[['lat', 'lon']].to_numpy()[None],
            probabilities(mq.score.to_numpy()[None], g.calibration['temperature']),
            geo['inlier_km'],
        )
        row = loc['sv'].set_index('query').loc[q]
        np.testing.assert_allclose([row.lat, row.lon], est[0], atol=1e-9)
    assert (m[m['rank'] == 1].inliers >= 15).all()  # every query verified against its own place
    assert loc['sv'].error_m.max() < 50 and loc['sv'].error_m.mean() <= loc['none'].error_m.mean()
