"""A feature extraction killed with SIGKILL mid-run resumes and ends with the same cache as an uninterrupted run."""

import subprocess

import numpy as np

from building_metric.data.index import BuildingIndex
from building_metric.data.synth import write_synthetic
from building_metric.features.cache import FeatureCache

from conftest import kill_when, run, spawn


def _args(index_csv, out):
    return [
        '--data',
        index_csv,
        '--out',
        out,
        '--extractors',
        'resnet,vit',
        '--tiny',
        '1',
        '--bs',
        '4',
        '--workers',
        '1',
        '--shard_rows',
        '8',
    ]


def test_kill_and_resume(tmp_path):
    write_synthetic(tmp_path / 'geo', 'geo', n_identities=16, views=5, size=64)
    idx = BuildingIndex.from_geo(tmp_path / 'geo').split(by='group', seed=0)
    idx.save(tmp_path / 'index.csv')

    whole = tmp_path / 'whole.h5'
    assert run('bm-extract', *_args(tmp_path / 'index.csv', whole)).returncode == 0

    shards = lambda a: len(list((tmp_path / f'killed{a}.h5.parts' / 'resnet').glob('0*.npy')))
    a = kill_when(
        lambda a: spawn(
            'bm-extract',
            *_args(tmp_path / 'index.csv', tmp_path / f'killed{a}.h5'),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        lambda a: shards(a) >= 3,
    )  # three shards written: part-way
    out, parts = tmp_path / f'killed{a}.h5', tmp_path / f'killed{a}.h5.parts' / 'resnet'
    done = len(list(parts.glob('0*.npy')))
    assert done >= 3 and not out.exists()  # part-way (vit not done), and no file that reads as complete

    r = run('bm-extract', *_args(tmp_path / 'index.csv', out))
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / f'killed{a}.h5.parts').exists()
    with FeatureCache(whole) as a, FeatureCache(out) as b:
        assert a.extractors == b.extractors == ['resnet', 'vit']
        for n in a.extractors:
            assert np.array_equal(a.features(n), b.features(n))
        assert np.array_equal(a.knn[0], b.knn[0]) and list(a.paths) == list(b.paths)
