"`bm-train --head projection` (the geographic triplet network's head) trains, carries its W&B names, and `bm-index --run` embeds with it."

import pytest

from building_metric.data.synth import write_synthetic

from conftest import run


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp('heads')
    write_synthetic(root / 'photos', 'folders', n_identities=16, views=6, size=48)
    return root


def test_projection_head_trains_and_bm_index_loads_it(photos, tmp_path):
    "`--head projection`: the geographic triplet network's head trains, and `bm-index --run` embeds with it."
    from building_metric.metric.heads import ProjectionHead, load_head
    from building_metric.search.gallery import BuildingGallery

    (photos / 'cfg.yaml').write_text("split: class\nresnet: 1\ntiny: true\nepochs: 1\nlr: 1.0e-3\nbatch: 16\n")
    out = tmp_path / 'proj'
    r = run(
        'bm-train', '--config', photos / 'cfg.yaml', '--data', photos / 'photos', '--head', 'projection', '--out', out
    )
    assert r.returncode == 0, r.stderr
    head, meta = load_head(out / 'models' / 'best.pth')
    assert isinstance(head, ProjectionHead) and head.emb_dim == 128 and meta['head'] == 'ProjectionHead'
    r = run('bm-index', '--run', out, '--gallery', photos / 'photos', '--out', tmp_path / 'gallery')
    assert r.returncode == 0, r.stderr
    g = BuildingGallery(tmp_path / 'gallery')
    assert len(g) == len(list((photos / 'photos').rglob('*.png'))) and g.emb.shape[1] == 128
