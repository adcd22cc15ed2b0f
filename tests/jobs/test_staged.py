"`bm-staged` from the shell: four phases on generated buildings, snapshots that rebuild the models they were taken of, the report checked against scikit-learn, a run killed inside the ArcFace phase and resumed, distillation from a saved teacher, CIFAR-100 in its published layout, and bad runs refused before any work."

import json, pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from sklearn.metrics import classification_report, confusion_matrix

from building_metric.config import StagedRunConfig
from building_metric.data.synth import write_synthetic
from building_metric.metric.heads import load_embedder
from building_metric.evaluation.embedders import embed_index
from building_metric.jobs.staged import cifar100_index, staged_index

from conftest import inside_epoch, kill_when, one_line_error, run, spawn_watched

TINY = [
    '--tiny',
    '1',
    '--arch',
    'resnet18',
    '--size',
    '32',
    '--bs',
    '4',
    '--emb_dim',
    '32',
    '--supcon_lr',
    '0.003',
    '--arcface_lr',
    '0.003',
    '--distill_lr',
    '0.003',
    '--ema',
    '0.9',
    '--supcon_epochs',
    '1',
    '--arcface_epochs',
    '2',
    '--distill_epochs',
    '1',
]


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    return write_synthetic(
        tmp_path_factory.mktemp('staged') / 'photos', n_identities=6, views=8, size=64, n_workers=0, progress=False
    )


@pytest.fixture(scope='module')
def full(photos, tmp_path_factory):
    out = tmp_path_factory.mktemp('full') / 'run'
    r = run('bm-staged', '--data', photos, *TINY, '--phases', 'supcon', 'arcface', 'distill', 'evaluate', '--out', out)
    assert r.returncode == 0, r.stderr
    assert set(json.loads(r.stdout)) == {'supcon', 'arcface', 'distill', 'evaluate'}
    return out


def _same(a, b, x):
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x), atol=1e-6, rtol=0)


def test_snapshots_rebuild_the_models_they_were_taken_of(full):
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    s = full / 'snapshots'
    for phase in ('supcon', 'arcface', 'arcface_ema', 'distill'):  # what the run held in memory:
        models = full / phase.split('_')[0] / 'models'  # its best, or its final EMA
        sd = (
            torch.load(models / 'last.pth', weights_only=True)['callbacks']['EMA']['weights']
            if phase.endswith('_ema')
            else torch.load(models / 'best.pth', weights_only=True)
        )
        held = load_embedder(s / f'{phase}.pth')
        held.load_state_dict({k[5:]: v for k, v in sd.items() if k.startswith('head.')})
        _same(load_embedder(s / f'{phase}.pth'), held, x)
        _same(load_embedder(s / f'{phase}_backbone.pth', head=s / f'{phase}_head.pth'), held, x)
    assert (
        json.loads((s / 'arcface_ema.json').read_text())['ema']
        and not json.loads((s / 'arcface.json').read_text())['ema']
    )


def test_report_agrees_with_an_independent_computation(full, photos):
    ev = full / 'evaluate'
    pred = pd.read_csv(ev / 'predictions.csv')
    rep = pd.read_csv(ev / 'classification_report.csv', index_col='class')
    sk = classification_report(pred.true, pred.predicted, output_dict=True, zero_division=0)
    for c in set(pred.true):
        assert abs(rep.loc[c, 'f1-score'] - sk[c]['f1-score']) < 1e-9 and rep.loc[c, 'support'] == sk[c]['support']
    cm = pd.read_csv(ev / 'confusion.csv', index_col='true')
    assert (cm.to_numpy() == confusion_matrix(pred.true, pred.predicted, labels=cm.index)).all()
    # the predictions themselves: the nearest class mean of the training photos, by the distilled student
    cfg = StagedRunConfig(data=str(photos), tiny=True, arch='resnet18', out=str(full))
    index, model = staged_index(cfg), load_embedder(full / 'snapshots' / 'distill.pth')
    emb, lab = embed_index(model, index, 32, model.preprocess.mean, std=model.preprocess.std)
    split, names = index.items.split.to_numpy(), np.array(index.classes)
    tr, va = split == 'train', split == 'val'
    means = torch.stack(
        [
            torch.nn.functional.normalize(emb[tr][lab[tr] == c].mean(0), dim=0)
            for c in range(len(names))
            if (lab[tr] == c).any()
        ]
    )
    seen = [c for c in range(len(names)) if (lab[tr] == c).any()]
    mine = names[np.array(seen)[(emb[va] @ means.T).argmax(1).numpy()]]
    assert (pred.predicted.to_numpy() == mine).mean() >= 0.9  # (near-ties may fall either way)
    m = json.loads((ev / 'metrics.json').read_text())
    assert (
        m['phase'] == 'distill' and abs(m['classification']['accuracy'] - (pred.true == pred.predicted).mean()) < 1e-12
    )
    assert {'confusion.png', 'reliability.png', 'ood.png', 'report.md'} <= {p.name for p in ev.iterdir()}
    assert 'ece' in m['seen_buildings_heldout_views'] and {'energy', 'mahalanobis'} <= set(m['ood'])


def test_killed_inside_arcface_then_resumed_matches_an_uninterrupted_run(photos, full, tmp_path):
    common = ['--data', photos, *TINY, '--phases', 'supcon', 'arcface']
    ready = inside_epoch(lambda a: tmp_path / f'beacon{a}', epoch=1)  # SupCon is epoch 0 alone: epoch 1 is ArcFace's
    a = kill_when(
        lambda a: spawn_watched('bm-staged', tmp_path / f'beacon{a}', *common, '--out', tmp_path / f'cut{a}'), ready
    )
    cut = tmp_path / f'cut{a}'
    assert torch.load(cut / 'arcface' / 'models' / 'last.pth', weights_only=True)['epoch'] == 0
    assert (cut / 'supcon' / 'metrics.json').is_file() and not (cut / 'arcface' / 'metrics.json').exists()
    r = run('bm-staged', *common, '--out', cut, '--resume', '1')
    assert r.returncode == 0, r.stderr
    assert 'supcon: finished in an earlier run' in r.stderr and 'resuming from epoch 1' in r.stderr
    x, y = (torch.load(d / 'arcface' / 'models' / 'last.pth', weights_only=True) for d in (full, cut))
    assert x['epoch'] == y['epoch'] == 1 and x['train_iter'] == y['train_iter']
    for k in x['model']:
        torch.testing.assert_close(y['model'][k].float(), x['model'][k].float(), atol=1e-4, rtol=1e-3)


def test_distillation_from_a_saved_teacher_gives_the_in_run_student(photos, full, tmp_path):
    r = run(
        'bm-staged',
        '--data',
        photos,
        *TINY,
        '--phases',
        'distill',
        '--teacher_backbone_path',
        full / 'snapshots' / 'arcface_ema.pth',
        '--out',
        tmp_path / 'd',
    )
    assert r.returncode == 0, r.stderr
    a, b = (torch.load(d / 'snapshots' / 'distill.pth', weights_only=True) for d in (full, tmp_path / 'd'))
    for k in a:
        torch.testing.assert_close(b[k].float(), a[k].float(), atol=1e-5, rtol=1e-4)


def _tiny_cifar(root):
    d = root / 'cifar-100-python'
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def part(n):
        return {
            b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b'fine_labels': [i % 3 for i in range(n)],
            b'filenames': [f'{i}.png'.encode() for i in range(n)],
        }

    parts = dict(train=part(30), test=part(6), meta={b'fine_label_names': [b'apple', b'bridge', b'castle']})
    for k, v in parts.items():
        (d / k).write_bytes(pickle.dumps(v))
    return parts


def test_cifar100_in_its_published_layout(tmp_path):
    parts = _tiny_cifar(tmp_path / 'c')
    ix = cifar100_index(tmp_path / 'c', tmp_path / 'png')
    items = ix.items
    assert (
        (items.split == 'test').sum() == 6
        and (items.split == 'val').sum() == 3
        and (items.split == 'train').sum() == 27
    )
    assert sorted(ix.classes) == ['apple', 'bridge', 'castle']
    first = items[items.split == 'test'].iloc[0]
    k = int(first.path.split('/')[-1][:5])
    im = np.asarray(Image.open(tmp_path / 'png' / first.path))
    assert (im == parts['test'][b'data'][k].reshape(3, 32, 32).transpose(1, 2, 0)).all() and first.label == [
        'apple',
        'bridge',
        'castle',
    ][k % 3]


def test_bad_runs_fail_before_any_work(photos, full, tmp_path):
    cases = [
        (['--cifar100', tmp_path / 'nothing'], 'CIFAR-100 not found'),
        (
            [
                '--data',
                photos,
                '--phases',
                'distill',
                '--teacher_backbone_path',
                full / 'snapshots' / 'arcface.pth',
                '--arch',
                'resnet34',
            ],
            'arcface.pth is a resnet18, not a resnet34',
        ),
        (['--data', photos, '--phases', 'distill', 'evaluate'], 'no teacher'),
    ]
    for i, (args, says) in enumerate(cases):
        out = tmp_path / f'x{i}'
        r = run('bm-staged', *TINY, *args, '--out', out)
        assert one_line_error(r, 'bm-staged') and says in r.stderr, r.stderr
        assert not out.exists()


def test_search_and_bm_eval_use_the_staged_model(photos, full, tmp_path):
    g = run('bm-index', '--run', full, '--gallery', photos, '--out', tmp_path / 'g', '--workers', '0')
    assert g.returncode == 0, g.stderr
    assert json.loads((tmp_path / 'g' / 'gallery.json').read_text())['model_source'] == str(
        full / 'snapshots' / 'distill.pth'
    )
    q = sorted(photos.glob('*/*.png'))[:3]
    s = run('bm-search', '--gallery', tmp_path / 'g', '--query', q[0].parent, '--out', tmp_path / 'res')
    assert s.returncode == 0, s.stderr
    res = pd.read_csv(tmp_path / 'res' / 'results.csv')
    for _, r in res.iterrows():  # each query photo is in the gallery: its own nearest neighbour
        assert Path(r.top1_path).name == Path(r.query).name and r.top1_similarity > 0.9999
    e = run(
        'bm-eval', '--checkpoint', full / 'snapshots' / 'distill.pth', '--data', photos, '--out', tmp_path / 'report'
    )
    assert e.returncode == 0, e.stderr
    a, b = (json.loads((d / 'metrics.json').read_text()) for d in (tmp_path / 'report', full / 'evaluate'))
    for part in ('seen_buildings_heldout_views', 'unseen_buildings'):  # the run's own evaluation, from the shell
        for k in ('ncm_top1', 'map_at_r'):
            assert abs(a[part][k] - b[part][k]) < 1e-6


def test_export_and_infer_from_the_shell(photos, full, tmp_path):
    import onnxruntime as ort

    e = run('bm-export', 'onnx', '--checkpoint', full, '--out', tmp_path / 'student.onnx')
    assert e.returncode == 0, e.stderr
    model = load_embedder(full / 'snapshots' / 'distill.pth')
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    sess = ort.InferenceSession(str(tmp_path / 'student.onnx'))
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - model(x).numpy()).max() < 1e-4  # through onnxruntime
    q = run('bm-export', 'int8', '--checkpoint', full, '--out', tmp_path / 'student.pt')
    assert q.returncode == 0 and json.loads(q.stdout)['max_abs_diff'] < 0.05, q.stderr
    i = run(
        'bm-infer',
        '--images',
        photos / 'bldg_0000',
        '--checkpoint',
        full,
        '--out',
        tmp_path / 'inf',
        '--gradcam',
        '1',
        '--k',
        '2',
    )
    assert i.returncode == 0, i.stderr
    n = len(list((photos / 'bldg_0000').glob('*.png')))
    assert len(list((tmp_path / 'inf' / 'gradcam').glob('*.png'))) == n
    emb, pred = np.load(tmp_path / 'inf' / 'embeddings.npy'), pd.read_csv(tmp_path / 'inf' / 'predictions.csv')
    c = torch.load(full / 'snapshots' / 'distill_classes.pth', weights_only=True)
    logits = (
        c['scale']
        * torch.nn.functional.normalize(torch.from_numpy(emb), dim=1)
        @ torch.nn.functional.normalize(c['weight'], dim=1).T
    )
    p = logits.softmax(1)
    assert list(pred.class1) == [c['classes'][j] for j in p.argmax(1)] and np.allclose(
        pred.prob1, p.max(1).values, atol=1e-5
    )
    bad = run('bm-export', 'tflite', '--checkpoint', full, '--out', tmp_path / 'x.tflite')
    assert one_line_error(bad, 'bm-export')


def test_hpo_tunes_a_staged_phase(photos, tmp_path):
    import yaml

    base = dict(zip([a.lstrip('-') for a in TINY[::2]], [yaml.safe_load(v) for v in TINY[1::2]]), tiny=True)
    (tmp_path / 'staged.yaml').write_text(yaml.safe_dump(dict(base, data=str(photos), phases='supcon arcface')))
    r = run(
        'bm-hpo',
        '--staged',
        tmp_path / 'staged.yaml',
        '--phase',
        'arcface',
        '--n_trials',
        '2',
        '--out',
        tmp_path / 'hpo',
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / 'hpo'
    trials = pd.read_csv(out / 'trials.csv')
    assert (trials.state == 'COMPLETE').sum() == 2 and {
        'params_margin',
        'params_scale',
        'params_ema',
        'params_arcface_lr',
    } <= set(trials)
    best = json.loads((out / 'best.json').read_text())
    m = json.loads((out / f"trial_{best['number']}" / 'arcface' / 'metrics.json').read_text())
    assert abs(m['best']['value'] - best['value']) < 1e-12 and best['metric'] == 'map_at_r'
    assert StagedRunConfig.from_yaml(out / 'best_config.yaml').margin == best['params']['margin']
    assert (out / 'shared' / 'snapshots' / 'supcon.pth').is_file() and not (
        out / 'trial_0' / 'supcon'
    ).exists()  # SupCon once


def test_toolkit_keys_from_the_shell(photos, tmp_path):
    "Toolkit keys train, are recorded in config.yaml, and their reports agree with a recomputation from the files."
    import yaml

    from building_metric.retrieval.metrics import retrieval_metrics
    from building_metric.metric.learner import image_dataloaders
    from building_metric.callbacks import embed_all

    out = tmp_path / 'tk'
    keys = dict(
        optimizer='sgd', lookahead='2', sam_rho='0.05', grad_centralization='true', scheduler='cyclic', cycle_len='2',
        snapshots='2', augment='randaugment', jitter='[0.3, 0.3, 0.3, 0.05]', erasing='0.25', crop_scale='[0.6, 1]',
        mix='tokenmix', margin_loss='curricularface', tta_runs='2', cbam='[3]', adapter='lora', accumulate='2',
    )  # fmt: skip
    flags = [a for k, v in keys.items() for a in (f'--{k}', v)]
    args = ['--supcon_epochs', '0', '--arcface_epochs', '4', '--phases', 'arcface', 'evaluate', '--out', out]
    r = run('bm-staged', '--data', photos, *TINY, *args, *flags)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load((out / 'arcface' / 'config.yaml').read_text())
    for k, v in keys.items():
        assert cfg[k] == yaml.safe_load(v), (k, cfg[k])
    # the snapshot ensemble: its members are on disk, and its score is the mean of their embeddings'
    m = json.loads((out / 'arcface' / 'metrics.json').read_text())['snapshot_ensemble']
    members = [load_embedder(f) for f in m['files']]
    assert len(members) == 2
    index = staged_index(StagedRunConfig(data=str(photos), out=str(out)))
    dl = image_dataloaders(index, size=32, bs=4, augment=False, mean=members[0].preprocess.mean,
                           std=members[0].preprocess.std).valid  # fmt: skip
    embs = [torch.nn.functional.normalize(embed_all(e, dl)[0], dim=1) for e in members]
    y = embed_all(members[0], dl)[1]
    assert abs(retrieval_metrics(torch.stack(embs).mean(0), y)['map_at_r'] - m['ensemble']['map_at_r']) < 1e-6
    # LoRA: the adapters' checkpoint holds the adapters and the head, not the frozen backbone
    sd = torch.load(out / 'snapshots' / 'arcface_adapters.pth', weights_only=True)
    assert sd and all('lora_' in k or k.startswith('head.') for k in sd), list(sd)[:5]
    full_size = (out / 'snapshots' / 'arcface.pth').stat().st_size
    assert (out / 'snapshots' / 'arcface_adapters.pth').stat().st_size < full_size / 2
    tta = json.loads((out / 'evaluate' / 'metrics.json').read_text())['tta']
    assert tta['runs'] == 2 and set(tta) >= {'plain', 'tta'}
