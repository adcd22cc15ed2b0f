"The SLURM batch scripts of slurm/, where no cluster is: each parses (`bash -n`), and each one-node command line, run with SLURM's variables for one node and two processes (gloo), ends as the plain `torchrun` command does."

import json
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from building_metric.data.index import BuildingIndex
from building_metric.data.synth import write_synthetic
from building_metric.features.cache import FeatureCache

from conftest import BIN, ENV

ROOT = Path(__file__).parent.parent
SCRIPTS = sorted((ROOT / 'slurm').glob('*.sh'))


def _port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def slurm(script: str, *args) -> subprocess.CompletedProcess:
    "`slurm/<script>.sh ARGS` as sbatch would run it on one node given two processes (no srun here: torchrun alone)."
    env = dict(
        ENV,
        OMP_NUM_THREADS='1',
        SLURM_JOB_ID='4242',
        SLURM_NNODES='1',
        SLURM_JOB_NODELIST='localhost',
        SLURM_SUBMIT_DIR=str(ROOT),
        BM_NPROC_PER_NODE='2',
        BM_MASTER_PORT=str(_port()),
        BM_PYTHON=str(BIN / 'python'),
    )
    return subprocess.run(
        ['bash', str(ROOT / 'slurm' / f'{script}.sh'), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def torchrun(command: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            str(BIN / 'torchrun'),
            '--standalone',
            '--nproc_per_node=2',
            '-m',
            'building_metric.cli',
            command,
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        env=dict(ENV, OMP_NUM_THREADS='1'),
        timeout=600,
    )


def test_every_script_parses_and_names_its_command():
    assert {p.stem for p in SCRIPTS} == {'launch', 'train', 'extract', 'seg_train', 'search'}
    for p in SCRIPTS:
        assert subprocess.run(['bash', '-n', str(p)], capture_output=True).returncode == 0, p
        if p.stem != 'launch':
            text = p.read_text()
            assert '#SBATCH --nodes=1' in text and f"bm_launch {p.stem.replace('_', '-')} \"$@\"" in text


@pytest.fixture(scope='module')
def index(tmp_path_factory):
    root = tmp_path_factory.mktemp('slurm')
    write_synthetic(root / 'geo', 'geo', n_identities=12, views=4, size=48)
    BuildingIndex.from_path(root / 'geo', progress=False).split(by='group', seed=0).save(root / 'index.csv')
    return root / 'index.csv'


def test_extract_script_equals_torchrun(index, tmp_path):
    common = [
        '--data',
        index,
        '--extractors',
        'resnet',
        '--tiny',
        '1',
        '--workers',
        '0',
        '--bs',
        '4',
        '--shard_rows',
        '8',
    ]
    s = slurm('extract', *common, '--out', tmp_path / 'slurm.h5')
    t = torchrun('extract', *common, '--out', tmp_path / 'plain.h5')
    assert s.returncode == 0 and t.returncode == 0, s.stderr + t.stderr
    assert 'bm-extract on 1 node(s) x 2 process(es)' in s.stderr
    a, b = json.loads(s.stdout), json.loads(t.stdout)
    assert {k: v for k, v in a.items() if k not in ('seconds', 'cache')} == {
        k: v for k, v in b.items() if k not in ('seconds', 'cache')
    }
    with FeatureCache(tmp_path / 'slurm.h5') as x, FeatureCache(tmp_path / 'plain.h5') as y:
        assert list(x.paths) == list(y.paths) and np.array_equal(x.features('resnet'), y.features('resnet'))


def test_train_script_equals_torchrun(index, tmp_path):
    from building_metric.features.cache import extract_features

    idx = BuildingIndex.load(index)
    cache = extract_features(idx, ['resnet'], tmp_path / 'f.h5', tiny=True, progress=False, num_workers=0)
    flags = [
        '--data',
        cache,
        '--resnet',
        '1',
        '--epochs',
        '2',
        '--batch',
        '16',
        '--sampler',
        'm_per_class',
        '--m',
        '4',
        '--lr',
        '0.01',
        '--eval_every',
        '3',
        '--patience',
        '0',
        '--log',
        'csv',
    ]  # (--m, --log: the script hands them on)
    s = slurm('train', *flags, '--out', tmp_path / 'slurm')
    assert s.returncode == 0, s.stderr
    plain = [f"{a[2:]}={b}" for a, b in zip(flags[::2], flags[1::2])]  # torchrun's own parser takes --m and --log
    t = torchrun('train', *plain, f"out={tmp_path / 'plain'}")
    assert t.returncode == 0, t.stderr
    a, b = (json.loads((tmp_path / d / 'metrics.json').read_text()) for d in ('slurm', 'plain'))
    for k in ('map_at_r', 'precision_at_1'):
        assert abs(a[k] - b[k]) < 1e-6, (k, a[k], b[k])


@pytest.mark.slow
def test_seg_train_script_equals_torchrun(tmp_path):
    write_synthetic(tmp_path / 'facades', 'segmentation', n_identities=12, views=4, size=64)
    flags = [
        '--data',
        tmp_path / 'facades',
        '--arch',
        'unet_resnet18',
        '--tiny',
        '1',
        '--pretrained',
        '0',
        '--size',
        '64',
        '--epochs',
        '2',
        '--lr',
        '3e-3',
        '--batch',
        '8',
        '--augment',
        '0',
        '--log',
        'csv',
    ]
    s = slurm('seg_train', *flags, '--out', tmp_path / 'slurm')
    assert s.returncode == 0, s.stderr
    t = torchrun('seg-train', *[f"{a[2:]}={b}" for a, b in zip(flags[::2], flags[1::2])], f"out={tmp_path / 'plain'}")
    assert t.returncode == 0, t.stderr
    a, b = (json.loads((tmp_path / d / 'metrics.json').read_text()) for d in ('slurm', 'plain'))
    assert abs(a['miou'] - b['miou']) < 1e-6


@pytest.mark.slow
def test_search_script_equals_torchrun(tmp_path):
    from conftest import sharded_gallery

    sharded_gallery(tmp_path)
    flags = [
        '--gallery',
        tmp_path / 'g' / 'shards',
        '--query',
        tmp_path / 'new',
        '--workers',
        '0',
        '--pictures',
        '0',
        '--k',
        '7',
    ]
    s = slurm('search', *flags, '--out', tmp_path / 'slurm')
    assert s.returncode == 0, s.stderr
    t = torchrun('search', *[f"{a[2:]}={b}" for a, b in zip(flags[::2], flags[1::2])], f"out={tmp_path / 'plain'}")
    assert t.returncode == 0, t.stderr
    a, b = (json.loads((tmp_path / o / 'results.json').read_text()) for o in ('slurm', 'plain'))
    assert [[m['path'] for m in q['matches']] for q in a['queries']] == [
        [m['path'] for m in q['matches']] for q in b['queries']
    ]
