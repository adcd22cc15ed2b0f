"Re-ranking from the shell: `bm-index --dba 1`, `bm-search --rerank dba|sv`, checked against the API and an independent count of the verified inliers."
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import run

import os
cv2 = __import__('cv2') if os.environ.get('BUILDING_METRIC_REQUIRE') == '1' else pytest.importorskip('cv2')


def _warp(im:Image.Image, seed:int, side:int=320) -> Image.Image:
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
    photos = {n: Image.fromarray(getattr(skd, n)()) for n in ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'brick')}
    known = ['astronaut', 'coffee', 'chelsea', 'rocket']
    for i, (n, im) in enumerate(photos.items()):
        for v in (range(3) if n in known else [2]):   # views 0, 1 in the gallery; view 2 of each photo a query
            part = 'gallery' if v < 2 else 'queries'
            (tmp_path/part/n).mkdir(parents=True, exist_ok=True)
            _warp(im, 10 * i + v).save(tmp_path/part/n/f'{v}.jpg', quality=92)
    r = run('bm-index', '--extractors', 'resnet', '--tiny', '1', '--gallery', tmp_path/'gallery', '--out', tmp_path/'g',
            '--workers', '0', '--dba', '1')
    assert r.returncode == 0, r.stderr
    assert (tmp_path/'g'/'dba.npy').is_file()
    g = BuildingGallery(tmp_path/'g', SearchModel.from_extractors('resnet', tiny=True))
    for how in ('dba', 'sv'):
        s = run('bm-search', '--gallery', tmp_path/'g', '--query', tmp_path/'queries', '--out', tmp_path/how, '--workers', '0',
                '--pictures', '0', '--rerank', how)
        assert s.returncode == 0, s.stderr
        csv = pd.read_csv(tmp_path/how/'results.csv', keep_default_na=False)
        assert set(csv.rerank) == {how}
        t, m, _ = g.answer(tmp_path/'queries', rerank=how, workers=0)
        assert csv.top1_path.tolist() == t.top1_path.tolist() and csv.building.tolist() == t.building.tolist()
    seen = csv[csv.true_building.isin(known)]
    # every view of a known photo is verified against a view of it, whatever the (random, tiny) global features said
    assert (seen.top1_path.map(lambda p: p.split('/')[-2]) == seen.true_building).all(), seen
    assert (seen.building == seen.true_building).all()
    for _, row in csv.iterrows():   # the inliers, counted again here from the two photos
        assert row.top1_inliers == count_inliers(local_features(row['query']), local_features(row.top1_path))
    summary = json.loads((tmp_path/'sv'/'results.json').read_text())['summary']
    assert summary['rerank'] == 'sv' and summary['sv_ms_per_query'] > 0
    bad = run('bm-search', '--gallery', tmp_path/'g', '--query', tmp_path/'queries', '--out', tmp_path/'x', '--rerank', 'qe')
    assert bad.returncode != 0 and "--rerank 'qe' is not allowed" in bad.stderr
