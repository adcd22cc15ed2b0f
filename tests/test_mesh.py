"`bm-mesh-train` and `bm-mesh-infer` from the shell: a run killed with SIGKILL inside an epoch (in its own process) and resumed ends with the weights of an uninterrupted run; labelled meshes out; bad input in one line."

import json

import pandas as pd
import pytest
import torch

from building_metric.mesh.io import read_mesh
from building_metric.mesh.synth import write_synthetic_meshes

from conftest import inside_epoch, kill_when, one_line_error, run, spawn_watched

SMALL = [
    '--dim',
    '16',
    '--heads',
    '2',
    '--blocks',
    '1',
    '--texels',
    '4',
    '--max_faces',
    '32',
    '--clusters',
    '4',
    '--batch',
    '2',
    '--lr',
    '0.003',
    '--patience',
    '0',
]


@pytest.fixture(scope='module')
def meshes(tmp_path_factory):
    return write_synthetic_meshes(tmp_path_factory.mktemp('mesh') / 'meshes', n=(3, 1, 1))


def test_killed_mid_epoch_then_resumed_matches_an_uninterrupted_run(meshes, tmp_path):
    common = ['--data', meshes, *SMALL, '--epochs', '2', '--ema', '0.9']  # killed inside the last epoch
    full = run('bm-mesh-train', *common, '--out', tmp_path / 'full')
    assert full.returncode == 0, full.stderr

    ready = inside_epoch(lambda a: tmp_path / f'beacon{a}', epoch=1)  # on the run's own batches
    a = kill_when(
        lambda a: spawn_watched('bm-mesh-train', tmp_path / f'beacon{a}', *common, '--out', tmp_path / f'cut{a}'), ready
    )
    cut = tmp_path / f'cut{a}'
    assert (
        torch.load(cut / 'models' / 'last.pth', weights_only=True)['epoch'] == 0 and not (cut / 'metrics.json').exists()
    )

    r = run('bm-mesh-train', *common, '--out', cut, '--resume', '1')
    assert r.returncode == 0, r.stderr
    assert 'resuming from epoch 1' in r.stderr
    x, y = (torch.load(d / 'models' / 'last.pth', weights_only=True) for d in (tmp_path / 'full', cut))
    assert x['epoch'] == y['epoch'] == 1 and x['train_iter'] == y['train_iter']
    for k in x['model']:
        torch.testing.assert_close(y['model'][k].float(), x['model'][k].float(), atol=1e-4, rtol=1e-3)
    ma, mb = (json.loads((d / 'metrics.json').read_text()) for d in (tmp_path / 'full', cut))
    assert abs(ma['mean_f1'] - mb['mean_f1']) < 1e-3 and ma['best']['epoch'] == mb['best']['epoch']
    assert ma['best']['metric'] == 'mean_f1'

    out = tmp_path / 'labelled'
    i = run('bm-mesh-infer', '--checkpoint', tmp_path / 'full', '--meshes', meshes / 'test', '--out', out)
    assert i.returncode == 0, i.stderr
    rep = pd.read_csv(out / 'report.csv')
    src = sorted((meshes / 'test').glob('*.ply'))[0]
    pred, truth = read_mesh(out / src.name).labels, read_mesh(src).labels
    assert len(rep) == 1 and rep.faces[0] == len(truth) and abs(rep.accuracy[0] - (pred == truth).mean()) < 1e-12
    assert json.loads(i.stdout)['meshes'] == 1


def test_bad_input_is_one_line(meshes, tmp_path):
    for args in (
        ['--data', tmp_path / 'none'],
        ['--data', meshes, '--select', 'loss'],
        ['--data', meshes, '--dim', '30'],
        ['--data', meshes, '--freeze_encoder', '1'],
    ):
        r = run('bm-mesh-train', *args, '--out', tmp_path / 'x')
        assert one_line_error(r, 'bm-mesh-train'), r.stderr
    r = run('bm-mesh-infer', '--checkpoint', tmp_path / 'none', '--meshes', meshes / 'test', '--out', tmp_path / 'y')
    assert one_line_error(r, 'bm-mesh-infer'), r.stderr
