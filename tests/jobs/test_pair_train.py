"`bm-pair-train` runs in the run skeleton the other trainers share: killed inside an epoch, then `--resume 1`, it ends as a run never interrupted."

import subprocess

import torch

from building_metric.data.synth import write_synthetic
from conftest import one_line_error, run, spawn


def test_pair_train_second_writer_is_refused_in_one_line(tmp_path):
    from building_metric.core import WriterLock

    write_synthetic(tmp_path / 'geo', 'geo', n_identities=8, views=4, size=32, seed=0)
    with WriterLock(tmp_path / 'run', 'run folder'):  # held by this process: another one is refused
        p = spawn(
            'bm-pair-train',
            '--data',
            tmp_path / 'geo',
            '--tiny',
            '1',
            '--pretrained',
            '0',
            '--out',
            tmp_path / 'run',
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        out, err = p.communicate(timeout=300)
    r = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    assert one_line_error(r, 'bm-pair-train') and 'is being written by' in r.stderr, r.stderr


def test_pair_model_on_a_frozen_trunk_from_a_metric_embedder(tmp_path):
    "`--trunk_weights` starts the trunk from a bm-staged snapshot, `--freeze_trunk 1` keeps it so; the run's pictures."

    from building_metric.metric.heads import Embedder, save_embedder
    from building_metric.metric.siamese import load_pair_model

    write_synthetic(tmp_path / 'geo', 'geo', n_identities=16, views=4, size=32)
    torch.manual_seed(3)
    emb = Embedder('resnet18', 16, pretrained=False, layers=[1, 1, 1, 1])
    snap = save_embedder(emb, tmp_path / 'snapshots' / 'arcface.pth', phase='arcface')
    args = ['tiny=true', 'pretrained=false', 'size=32', 'epochs=1', 'batch=16', 'proj=[32, 16]', 'log=csv']
    r = run('bm-pair-train', '--data', tmp_path / 'geo', '--out', tmp_path / 'pairs', '--trunk_weights', snap,
            '--freeze_trunk', '1', *args)  # fmt: skip
    assert r.returncode == 0, r.stderr
    model, _ = load_pair_model(tmp_path / 'pairs')
    trunk, want = model.trunk.state_dict(), emb.backbone.state_dict()
    assert trunk and all(torch.equal(v, want[k]) for k, v in trunk.items())  # loaded, then never trained
    assert all((tmp_path / 'pairs' / f).stat().st_size > 1000 for f in ('training.png', 'features2d.png'))
    other = Embedder('resnet34', 16, pretrained=False)
    save_embedder(other, tmp_path / 'snapshots' / 'r34.pth')
    r = run('bm-pair-train', '--data', tmp_path / 'geo', '--out', tmp_path / 'bad', '--trunk_weights',
            tmp_path / 'snapshots' / 'r34.pth', *args)  # fmt: skip
    assert r.returncode == 2 and 'does not hold this trunk' in r.stderr, r.stderr


def test_exported_trunk_is_a_backbone_create_extractor_loads(tmp_path):
    "`export_trunk`: a pair run's trunk, loaded by `create_extractor` from the spec it returns, gives the trunk's features."

    from building_metric.features.extractors import create_extractor
    from building_metric.metric.siamese import export_trunk, load_pair_model

    write_synthetic(tmp_path / 'geo', 'geo', n_identities=12, views=4, size=32)
    args = ['tiny=true', 'pretrained=false', 'size=32', 'epochs=1', 'batch=16', 'proj=[32, 16]', 'log=none']
    r = run('bm-pair-train', '--data', tmp_path / 'geo', '--out', tmp_path / 'pairs', *args)
    assert r.returncode == 0, r.stderr
    spec = export_trunk(tmp_path / 'pairs', tmp_path / 'export' / 'trunk.pth')
    name, weights = spec.split('=')
    assert name == 'timm/resnet18' and weights == str(tmp_path / 'export' / 'trunk.pth')
    e = create_extractor(name, weights=weights)
    model, _ = load_pair_model(tmp_path / 'pairs')
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        want = model.trunk(x)[-1].mean((2, 3))
    assert e.input_size == 32 and e.feature_dim == want.shape[1]
    assert torch.allclose(e(x), want, atol=1e-5)  # the trained weights, not fresh ones
    assert e.info()['model_id'] == weights
