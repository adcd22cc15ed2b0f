"A gallery of one photo per building (the commonest gallery) sets its open-set threshold from photos of other buildings: unknown buildings are answered `unknown` at about the target false-accept rate, and the threshold says how it was set."

import numpy as np

from building_metric.retrieval.calibration import SINGLE_PHOTO_FAR
from building_metric.search.gallery import BuildingGallery
from building_metric.jobs.search import threshold_line


def _photos(rng, centres, views, noise=0.1):
    x = np.repeat(centres, views, 0) + noise * rng.standard_normal((len(centres) * views, centres.shape[1]))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_one_photo_per_building_rejects_unknown_buildings_at_the_target_rate(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((13 + 400, 64)) / 8  # 13 known buildings, 400 unknown ones
    g = BuildingGallery.from_embeddings(
        _photos(rng, centres[:13], 1), tmp_path / 'g', labels=[f'b{i}' for i in range(13)], log=None
    )
    c = g.calibration
    assert c['rule'] == 'impostors' and c['target_far'] == SINGLE_PHOTO_FAR and c['frr'] is None
    th = g.set_threshold()
    assert 'no building has two photos' in th['source'] and 'cannot be measured' in threshold_line(th)
    unknown = g.identify(_photos(rng, centres[13:], 5), k=5)  # 2000 photos of buildings it does not hold
    known = g.identify(_photos(rng, centres[:13], 20), k=5)  # 260 new photos of its own buildings
    far = (unknown.building != 'unknown').mean()
    assert 0.01 <= far <= 0.15, far  # about the 5% asked for
    hits = known.building == np.repeat([f'b{i}' for i in range(13)], 20)
    assert hits.mean() > 0.5 and (known.building == 'unknown').mean() < 0.5
    g.set_threshold(target_far=0.2)  # settable, as for any gallery
    assert 0.12 <= (g.identify(_photos(rng, centres[13:], 5), k=5).building != 'unknown').mean() <= 0.3
