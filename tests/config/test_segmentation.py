"`bm-seg-train`'s settings from the segmentation document, each changing what it says: the schedule's rates per epoch, the monitored score picking the best checkpoint, the top-k checkpoints kept, non-square sizes, the run's name, and the code's commit and versions in best.json; `bm-seg-infer --postprocess`."

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from building_metric.data.synth import write_synthetic

from conftest import run

TINY = ['--arch', 'unet_resnet18', '--tiny', '1', '--pretrained', '0', '--batch', '8', '--patience', '0']


@pytest.fixture(scope='module')
def facades(tmp_path_factory):
    return write_synthetic(
        tmp_path_factory.mktemp('segs') / 'facades', 'segmentation', n_identities=8, views=4, size=64
    )


@pytest.fixture(scope='module')
def monitored(facades, tmp_path_factory):
    "A 4-epoch run on the document's schedule, picking its checkpoint by mean F1 and keeping the best three."
    out = tmp_path_factory.mktemp('segrun')
    args = [
        '--size',
        '[64, 96]',
        '--epochs',
        '4',
        '--lr',
        '0.003',
        '--scheduler',
        'cosine_half',
        '--monitor',
        'mean_f1',
    ]
    args += ['--save_top_k', '3', '--optimizer', 'sgd', '--dropout', '0.1', '--name', 'exp1', '--deterministic', '1']
    args += ['--log', 'csv,tensorboard']
    r = run('bm-seg-train', '--data', facades, *TINY, *args, '--out', out)
    assert r.returncode == 0, r.stderr
    return out / 'exp1'


def test_cosine_over_half_the_epochs_per_epoch(monitored):
    "The document's schedule (torch's CosineAnnealingLR, T_max = half the epochs, eta_min 1e-6, stepped per epoch)."
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(monitored / 'tensorboard'))
    acc.Reload()
    groups = sorted(t for t in acc.Tags()['scalars'] if t.startswith('lr_'))
    steps = acc.Scalars(groups[-1])  # the decoder's group, at every training batch
    per_batch = np.array([s.value for s in steps])
    n = len(per_batch) // 4  # batches per epoch
    lr, eta, half = 0.003, 1e-6, 2
    want = [eta + (lr - eta) * (1 + math.cos(math.pi * e / half)) / 2 for e in range(4)]
    assert np.allclose(per_batch.reshape(4, n), np.array(want)[:, None], rtol=1e-6, atol=0)


def test_monitor_mean_f1_keeps_the_best_mean_f1(monitored):
    ev = pd.read_csv(monitored / 'evaluations.csv')
    assert ev.metric.eq('mean_f1').all()
    best = json.loads((monitored / 'models' / 'best.json').read_text())
    assert best['metric'] == 'mean_f1' and best['value'] == pytest.approx(ev.value.max(), abs=1e-12)
    assert best['iter'] == int(ev.loc[ev.value.idxmax(), 'iter'])


def test_save_top_k_keeps_the_three_best(monitored):
    ev = pd.read_csv(monitored / 'evaluations.csv')
    top = sorted((monitored / 'models' / 'top').glob('*.pth'))
    assert len(top) == 3
    kept = sorted(json.loads(p.with_suffix('.json').read_text())['value'] for p in top)
    assert np.allclose(kept, sorted(ev.value)[-3:], atol=1e-12)


def test_best_json_says_what_code_trained(monitored):
    env = json.loads((monitored / 'models' / 'best.json').read_text())['environment']
    assert env['versions']['torch'] == torch.__version__.split('+')[0] or env['versions']['torch'] == torch.__version__
    assert 'git_commit' in env and env['python']


def test_non_square_size_and_postprocess(monitored, facades, tmp_path):
    best = json.loads((monitored / 'models' / 'best.json').read_text())
    assert best['config']['size'] == [64, 96]
    assert best['config']['scheduler'] == 'cosine_half' and best['config']['optimizer'] == 'sgd'
    imgs = tmp_path / 'imgs'
    imgs.mkdir()
    Image.fromarray((np.random.default_rng(0).random((80, 120, 3)) * 255).astype(np.uint8)).save(imgs / 'a.png')
    masks = {}
    for how in ('none', 'open_close'):
        out = tmp_path / how
        r = run('bm-seg-infer', '--checkpoint', monitored / 'models' / 'best.pth', '--images', imgs, '--out', out,
                '--postprocess', how)  # fmt: skip
        assert r.returncode == 0, r.stderr
        masks[how] = np.asarray(Image.open(out / 'masks' / 'a.png'))
    from building_metric.segmentation.infer import postprocess_mask

    assert (masks['open_close'] == postprocess_mask(masks['none'], 'open_close', 3)).all()
