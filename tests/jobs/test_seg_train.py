"`bm-seg-train` and `bm-seg-infer`: a good run and its masks, a run killed mid-epoch (in its own process) and resumed, bad input."

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from building_metric.tracking import wandb_history
from building_metric.data.synth import write_synthetic

from conftest import one_line_error, run

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
