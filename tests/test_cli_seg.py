"`bm-seg-train` and `bm-seg-infer`: a good run and its masks, a run killed mid-epoch (in its own process) and resumed, bad input."

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from building_metric.tracking import wandb_history
from building_metric.data.synth import write_synthetic

from conftest import inside_epoch, kill_when, one_line_error, run, spawn_watched

TINY = ['--arch', 'unet_resnet18', '--tiny', '1', '--pretrained', '0', '--size', '64', '--batch', '8', '--lr', '0.003']


@pytest.fixture(scope='module')
def facades(tmp_path_factory):
    return write_synthetic(
        tmp_path_factory.mktemp('seg') / 'facades', 'segmentation', n_identities=20, views=4, size=64
    )


def test_train_then_infer(facades, tmp_path):
    (tmp_path / 'seg.yaml').write_text(
        "arch: unet_resnet18\ntiny: true\npretrained: false\nsize: 64\nepochs: 2\nlr: 3.0e-3\nbatch: 4\nlog: csv,tensorboard,wandb\n"
    )
    out = tmp_path / 'run'
    r = run('bm-seg-train', '--config', tmp_path / 'seg.yaml', '--data', facades, '--batch', '8', '--out', out)
    assert r.returncode == 0, r.stderr
    m = json.loads((out / 'metrics.json').read_text())
    print('test mIoU', m['miou'], 'majority class', m['majority_baseline']['miou'])
    assert (
        m['split'] == 'test'
        and m['miou'] > 2 * m['majority_baseline']['miou']
        and set(m['iou']) >= {'wall', 'window', 'sky'}
    )
    assert json.loads(r.stdout)['miou'] == pytest.approx(m['miou'])
    assert 'batch: 8' in (out / 'config.yaml').read_text()  # the flag beat the file
    assert len(pd.read_csv(out / 'history.csv')) == 2 and list((out / 'tensorboard').glob('events.out.tfevents.*'))
    wb = wandb_history(next((out / 'wandb').glob('offline-run-*')), wait=60).dropna(
        subset=['valid_loss']
    )  # W&B, offline, no account
    assert len(wb) == 2 and np.allclose(wb.valid_loss, pd.read_csv(out / 'history.csv').valid_loss, atol=1e-5)
    assert {p.name for p in (out / 'models').iterdir()} == {'best.pth', 'best.json', 'best_state.pth', 'last.pth'}

    imgs = tmp_path / 'imgs'
    imgs.mkdir()
    tests = sorted((facades / 'images' / 'test').iterdir())
    for p in tests[:3]:
        (imgs / p.name).write_bytes(p.read_bytes())
    Image.fromarray(np.concatenate([np.asarray(Image.open(p).convert('RGB')) for p in tests[:2]], 0)).save(
        imgs / 'tall.png'
    )  # 128 x 64
    (imgs / 'broken.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    (tmp_path / 'infer.yaml').write_text(f"checkpoint: {out / 'models' / 'best.pth'}\nimages: {imgs}\nwindow: 32\n")
    r = run(
        'bm-seg-infer', '--config', tmp_path / 'infer.yaml', '--out', tmp_path / 'pred', 'window=64'
    )  # the override beats the file
    assert r.returncode == 0, r.stderr
    assert 'skipped broken.jpg' in r.stderr
    assert json.loads(r.stdout) == {'out': str(tmp_path / 'pred'), 'masks': 4, 'skipped': 1}
    assert 'window: 64' in (tmp_path / 'pred' / 'config.yaml').read_text()  # the resolved settings, beside the masks
    rep = pd.read_csv(tmp_path / 'pred' / 'report.csv').set_index('file')
    assert (
        (rep.status == 'ok').sum() == 4
        and rep.loc['broken.jpg', 'status'] == 'skipped'
        and rep.loc['tall.png', 'windows'] == 3
    )
    for p in tests[:3] + [imgs / 'tall.png']:
        mk = np.asarray(Image.open(tmp_path / 'pred' / 'masks' / Path(p.name).with_suffix('.png')))
        assert mk.shape == np.asarray(Image.open(p)).shape[:2] and mk.max() < 9
        assert (tmp_path / 'pred' / 'overlays' / Path(p.name).with_suffix('.png')).is_file()
    (tmp_path / 'empty').mkdir()
    r = run(
        'bm-seg-infer',
        '--checkpoint',
        out / 'models' / 'best.pth',
        '--images',
        tmp_path / 'empty',
        '--out',
        tmp_path / 'p2',
    )
    assert r.returncode == 0 and 'nothing to do' in r.stderr, r.stderr


def test_killed_mid_epoch_then_resumed_matches_an_uninterrupted_run(facades, tmp_path):
    common = [
        '--data',
        facades,
        *TINY,
        '--epochs',
        '2',
        '--ema',
        '0.9',
        '--patience',
        '0',
    ]  # killed inside the last epoch
    full = run('bm-seg-train', *common, '--out', tmp_path / 'full')
    assert full.returncode == 0, full.stderr

    ready = inside_epoch(
        lambda a: tmp_path / f'beacon{a}', epoch=1
    )  # a random batch of epoch 1, on the run's own progress
    a = kill_when(
        lambda a: spawn_watched('bm-seg-train', tmp_path / f'beacon{a}', *common, '--out', tmp_path / f'cut{a}'), ready
    )
    cut = tmp_path / f'cut{a}'
    last = cut / 'models' / 'last.pth'
    saved = torch.load(last, weights_only=True)
    assert saved['epoch'] == 0 and not (cut / 'metrics.json').exists()  # killed inside epoch 1, before it ended
    assert len(pd.read_csv(cut / 'history.csv')) == 1

    r = run('bm-seg-train', *common, '--out', cut, '--resume', '1')
    assert r.returncode == 0, r.stderr
    assert 'resuming from epoch 1' in r.stderr
    a, b = (torch.load(d / 'models' / 'last.pth', weights_only=True) for d in (tmp_path / 'full', cut))
    assert a['epoch'] == b['epoch'] == 1 and a['train_iter'] == b['train_iter']
    # the optimiser went on from its saved state: Adam's step counts and moments equal the uninterrupted run's
    for sa, sb in zip(a['opt']['state'], b['opt']['state']):
        for k in sa:
            if isinstance(sa[k], torch.Tensor):
                torch.testing.assert_close(sb[k], sa[k], atol=1e-4, rtol=1e-3)
            else:
                assert sa[k] == sb[k], k
    for k in a['model']:
        torch.testing.assert_close(b['model'][k].float(), a['model'][k].float(), atol=1e-4, rtol=1e-3)
    ha, hb = pd.read_csv(tmp_path / 'full' / 'history.csv'), pd.read_csv(cut / 'history.csv')
    assert hb.epoch.tolist() == [0, 1]
    np.testing.assert_allclose(hb.valid_miou, ha.valid_miou, atol=1e-3)  # stated tolerance: 1e-3 mIoU
    ma, mb = (json.loads((d / 'metrics.json').read_text()) for d in (tmp_path / 'full', cut))
    assert abs(ma['miou'] - mb['miou']) < 1e-3 and ma['best']['epoch'] == mb['best']['epoch']


def test_bad_input_is_one_line(tmp_path):
    (tmp_path / 'c.yaml').write_text("arch: unet_resnet18\nepoch: 3\n")
    cases = [
        ('bm-seg-train', [*TINY, '--epochs', 'many'], "'epochs'"),
        ('bm-seg-train', [*TINY, '--loss', 'lovasz'], "--loss 'lovasz' is not allowed"),
        ('bm-seg-train', [*TINY, '--data', tmp_path / 'nowhere'], "does not exist"),
        ('bm-seg-train', [*TINY, '--eopchs', '3'], "unrecognized arguments: --eopchs"),
        ('bm-seg-train', ['--config', tmp_path / 'c.yaml'], "did you mean 'epochs'"),
        (
            'bm-seg-infer',
            ['--checkpoint', tmp_path / 'none.pth', '--images', tmp_path, '--out', tmp_path / 'o'],
            'not found',
        ),
        ('bm-seg-infer', ['--checkpoint', tmp_path / 'none.pth'], 'needs --images'),
        (
            'bm-seg-infer',
            ['--checkpoint', tmp_path / 'none.pth', '--images', tmp_path, '--overlap', '1.5'],
            '--overlap 1.5 is not allowed',
        ),
    ]
    for i, (script, args, expect) in enumerate(cases):
        r = run(script, *args, *(['--out', tmp_path / f'r{i}'] if script == 'bm-seg-train' else []))
        assert one_line_error(r, script) and expect in r.stderr, (args, r.stderr)


def test_help_lists_every_setting():
    for script, flags in (
        ('bm-seg-train', ('--arch', '--layer_decay', '--ema', '--resume', '--log', 'key=value')),
        ('bm-seg-infer', ('--checkpoint', '--images', '--out', '--window', '--overlap', '--config', 'key=value')),
    ):
        r = run(script, '--help')
        assert r.returncode == 0 and all(f in r.stdout for f in flags), r.stdout
