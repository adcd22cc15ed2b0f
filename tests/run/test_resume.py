"""The run skeleton every trainer shares (`run.TrainingRun`): each trainer, killed with SIGKILL at a random batch inside
its last epoch (synchronised on the run's own progress, in its own process) and started again with `--resume 1`, ends
as a run never interrupted: the last and best weights, the optimiser's state, the EMA weights, the history and the
final score. One test, one row per trainer; the tolerances are the ones each trainer can promise on a CPU."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from building_metric.data.synth import write_synthetic
from building_metric.mesh.synth import write_synthetic_meshes
from conftest import inside_epoch, kill_when, run, spawn_watched


def _train(tmp):
    "bm-train on a feature cache of 16 buildings x 6 photos."
    write_synthetic(tmp / 'photos', 'folders', n_identities=16, views=6, size=48)
    args = ['--extractors', 'resnet', '--tiny', '1', '--split', 'class', '--workers', '0']
    r = run('bm-extract', '--data', tmp / 'photos', *args, '--out', tmp / 'f.h5')
    assert r.returncode == 0, r.stderr
    return ['--data', tmp / 'f.h5', '--resnet', '1', '--epochs', '2', '--batch', '8', '--lr', '0.01',
            '--eval_every', '3', '--patience', '0', '--ema', '0.9', '--workers', '0', '--log', 'csv']  # fmt: skip


def _pairs(tmp):
    "bm-pair-train on 16 buildings x 4 photos, a tiny random trunk."
    write_synthetic(tmp / 'geo', 'geo', n_identities=16, views=4, size=32, seed=0)
    return ['--data', tmp / 'geo', '--tiny', '1', '--pretrained', '0', '--size', '32', '--epochs', '2', '--batch', '8',
            '--proj', '[32, 16]', '--lr', '0.003', '--eval_every', '3', '--log', 'csv', '--workers', '0']  # fmt: skip


def _segment(tmp):
    "bm-seg-train on 20 facades x 4 views, a tiny U-Net."
    write_synthetic(tmp / 'facades', 'segmentation', n_identities=20, views=4, size=64)
    return ['--data', tmp / 'facades', '--arch', 'unet_resnet18', '--tiny', '1', '--pretrained', '0', '--size', '64',
            '--batch', '8', '--lr', '0.003', '--epochs', '2', '--ema', '0.9', '--patience', '0']  # fmt: skip


def _mesh(tmp):
    "bm-mesh-train on 3 + 1 + 1 generated buildings, a small face transformer."
    write_synthetic_meshes(tmp / 'meshes', n=(3, 1, 1))
    return ['--data', tmp / 'meshes', '--dim', '16', '--heads', '2', '--blocks', '1', '--texels', '4', '--max_faces', '32',
            '--clusters', '4', '--batch', '2', '--lr', '0.003', '--patience', '0', '--epochs', '2', '--ema', '0.9']  # fmt: skip


TRAINERS = {  # script: (its data and flags, the score in metrics.json, weight tolerance, score tolerance)
    'bm-train': (_train, 'map_at_r', 1e-6, 1e-6),
    'bm-pair-train': (_pairs, 'roc_auc', 1e-6, 1e-6),
    'bm-seg-train': (_segment, 'miou', 1e-4, 1e-3),
    'bm-mesh-train': (_mesh, 'mean_f1', 1e-4, 1e-3),
}


def _close(a: dict, b: dict, atol: float, what: str):
    assert a.keys() == b.keys(), what
    for k in a:
        if isinstance(a[k], torch.Tensor):
            torch.testing.assert_close(
                b[k].float(), a[k].float(), atol=atol, rtol=1e-3, msg=lambda m: f'{what} {k}: {m}'
            )
        elif isinstance(a[k], dict):
            _close(a[k], b[k], atol, f'{what} {k}')
        else:
            assert a[k] == b[k], f'{what} {k}'


@pytest.mark.parametrize('prog', list(TRAINERS))
def test_killed_mid_epoch_then_resumed_matches_an_uninterrupted_run(prog, tmp_path):
    setup, score, atol, stol = TRAINERS[prog]
    common = setup(tmp_path)
    full = run(prog, *common, '--out', tmp_path / 'full')
    assert full.returncode == 0, full.stderr

    ready = inside_epoch(lambda a: tmp_path / f'beacon{a}', epoch=1)
    a = kill_when(lambda a: spawn_watched(prog, tmp_path / f'beacon{a}', *common, '--out', tmp_path / f'cut{a}'), ready)
    cut = tmp_path / f'cut{a}'
    saved = torch.load(cut / 'models' / 'last.pth', weights_only=True)
    assert saved['epoch'] == 0 and not (cut / 'metrics.json').exists()  # killed inside epoch 1, before it ended

    r = run(prog, *common, '--out', cut, '--resume', '1')
    assert r.returncode == 0, r.stderr
    assert 'resuming from epoch 1' in r.stderr, r.stderr[-500:]
    x, y = (torch.load(d / 'models' / 'last.pth', weights_only=True) for d in (tmp_path / 'full', cut))
    assert x['epoch'] == y['epoch'] == 1 and x['train_iter'] == y['train_iter']
    _close(x['model'], y['model'], atol, 'last.pth')
    bx, by = (torch.load(d / 'models' / 'best.pth', weights_only=True) for d in (tmp_path / 'full', cut))
    _close(bx.get('model', bx), by.get('model', by), atol, 'best.pth')
    for sa, sb in zip(x['opt']['state'], y['opt']['state']):  # the optimiser went on from its saved state
        _close(sa, sb, atol, 'optimiser state')
    if 'EMA' in x.get('callbacks', {}):
        _close(x['callbacks']['EMA']['weights'], y['callbacks']['EMA']['weights'], atol, 'EMA')
    ha, hb = (pd.read_csv(d / 'history.csv') for d in (tmp_path / 'full', cut))
    assert hb.epoch.tolist() == [0, 1] and list(ha.columns) == list(hb.columns)
    np.testing.assert_allclose(
        hb.drop(columns='time', errors='ignore').to_numpy(float),
        ha.drop(columns='time', errors='ignore').to_numpy(float),
        atol=stol,
    )
    if (tmp_path / 'full' / 'evaluations.csv').is_file():  # the evaluations every `--eval_every` batches
        ea, eb = (pd.read_csv(d / 'evaluations.csv') for d in (tmp_path / 'full', cut))
        assert ea.iter.tolist() == eb.iter.tolist() and (ea.value - eb.value).abs().max() <= stol
    ma, mb = (json.loads((d / 'metrics.json').read_text()) for d in (tmp_path / 'full', cut))
    assert abs(ma[score] - mb[score]) <= stol
    same = ('epoch', 'iter', 'metric')  # the best weights were chosen at the same moment, by the same score
    assert {k: ma['best'].get(k) for k in same} == {k: mb['best'].get(k) for k in same}, (ma['best'], mb['best'])
