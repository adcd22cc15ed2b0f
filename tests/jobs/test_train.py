"`bm-train` and `bm-eval`: a good run, a resumed run, bad values and unknown flags."

import json

import pytest
import torch
from building_metric.config import default_cache
from building_metric.data.synth import write_synthetic
from building_metric.features.cache import FeatureCache
from building_metric.metric.heads import load_head
from conftest import one_line_error, pml_map_at_r, run


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp('cli')
    write_synthetic(root / 'photos', 'folders', n_identities=16, views=6, size=48)
    return root


def test_good_run_writes_outputs_and_reuses_cache(photos):
    (photos / 'cfg.yaml').write_text("split: class\nresnet: 1\ntiny: true\nepochs: 2\nlr: 1.0e-3\nbatch: 16\n")
    before = sorted((p.relative_to(photos / 'photos'), p.stat().st_mtime) for p in (photos / 'photos').rglob('*'))
    r = run(
        'bm-train',
        '--config',
        photos / 'cfg.yaml',
        '--data',
        photos / 'photos',
        '--lr',
        '0.01',
        '--eval_every',
        '5',
        '--out',
        photos / 'run',
    )
    assert r.returncode == 0, r.stderr
    out = photos / 'run'
    metrics = json.loads((out / 'metrics.json').read_text())
    cache = default_cache(photos / 'photos')
    assert (
        cache.is_file()
        and sorted((p.relative_to(photos / 'photos'), p.stat().st_mtime) for p in (photos / 'photos').rglob('*'))
        == before
    )
    head, _ = load_head(out / 'models' / 'best.pth')
    with FeatureCache(cache) as c, torch.no_grad():
        emb, y = head(torch.from_numpy(c.features('resnet', 'test'))), c.labels[c.rows('test')]
    assert (
        metrics['split'] == 'test' and abs(metrics['map_at_r'] - pml_map_at_r(emb, y)) < 1e-6
    )  # the best weights' MAP@R on the test split
    assert json.loads(r.stdout)['map_at_r'] == metrics['map_at_r']  # and printed: stdout is that JSON alone
    assert {p.name for p in out.iterdir()} >= {
        'config.yaml',
        'history.csv',
        'evaluations.csv',
        'metrics.json',
        'models',
    }
    assert 'lr: 0.01' in (out / 'config.yaml').read_text()  # the flag beat the file
    meta = json.loads((out / 'models' / 'best.json').read_text())
    assert meta['extractors'] == ['resnet'] and meta['config']['batch'] == 16
    mtime = cache.stat().st_mtime
    r2 = run(
        'bm-train',
        '--config',
        photos / 'cfg.yaml',
        '--data',
        photos / 'photos',
        '--epochs',
        '3',
        '--resume',
        '1',
        '--out',
        out,
    )
    assert r2.returncode == 0, r2.stderr
    assert cache.stat().st_mtime == mtime  # features reused
    assert (
        len((out / 'history.csv').read_text().strip().splitlines()) == 1 + 3
    )  # header + epochs 0, 1 and the resumed 2
    ev = run(
        'bm-eval', '--checkpoint', out / 'models' / 'best.pth', '--out', photos / 'report'
    )  # the run's features and photos
    assert ev.returncode == 0, ev.stderr
    report = json.loads((photos / 'report' / 'metrics.json').read_text())
    assert (
        f"| map_at_r | {report['unseen_buildings']['map_at_r']:.4f} |" in (photos / 'report' / 'report.md').read_text()
    )
    assert list(report['frozen_features']) == [
        'resnet (standardised)'
    ]  # the frozen features beside the trained head ...
    assert report['training_helped'].startswith(
        ('training helped on unseen buildings', 'training did not help')
    )  # ... and the verdict
    assert report['training_helped'][1:] in (photos / 'report' / 'report.md').read_text()
    assert (photos / 'report' / 'gallery.png').is_file() and (photos / 'report' / 'curves.png').is_file()
    on_images = run(
        'bm-eval', '--checkpoint', out / 'models' / 'best.pth', '--data', photos / 'photos', '--out', photos / 'report2'
    )
    assert on_images.returncode == 0, on_images.stderr  # images in: features extracted as the run's were
    assert json.loads((photos / 'report2' / 'metrics.json').read_text())['unseen_buildings']['n_images'] == 16 * 6
    assert (
        sorted((p.relative_to(photos / 'photos'), p.stat().st_mtime) for p in (photos / 'photos').rglob('*')) == before
    )  # nothing written into the photos
    bad = run('bm-eval', '--checkpoint', out / 'models' / 'nope.pth', '--data', cache, '--out', photos / 'report3')
    assert bad.returncode == 2 and 'bm-eval: error: checkpoint' in bad.stderr and 'not found' in bad.stderr


@pytest.mark.parametrize(
    'args, says',
    [
        (['--big_fusion_head', '9'], '--big_fusion_head 9 is not allowed. use one of 0, 1, 2, 3'),
        (['--train_type', 'hard'], "--train_type 'hard' is not allowed"),
        (['--loss', 'proxy'], "unknown loss 'proxy'"),
        (['--batch', 'lots'], "'batch'"),
        (['--bacth', '16'], 'unrecognized arguments: --bacth'),
        (['--resnet', '1', '--data', 'no/such/folder'], "--data 'no/such/folder' does not exist"),
        (['--data', '.'], 'no extractor is switched on'),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, says, tmp_path):
    r = run('bm-train', *args, '--out', tmp_path / 'o')
    assert one_line_error(r, 'bm-train') and says in r.stderr, r.stderr


def test_help_lists_every_setting():
    r = run('bm-train', '--help')
    assert r.returncode == 0
    for flag in (
        '--clip',
        '--segformer',
        '--midas',
        '--dpt',
        '--resnet',
        '--mobilenet',
        '--efficientnet',
        '--vit',
        '--gate',
        '--big_fusion_head',
        '--batch',
        '--lr',
        '--train_type',
        '--margin',
        '--alpha',
        '--config',
        '--sampler',
        '--resume',
    ):
        assert flag in r.stdout
    assert 'Fusion head size' in r.stdout  # the help text of each field


def test_any_extractor_with_local_weights(photos, tmp_path):
    "`--extractors timm/<model>=file`: trained on a checkpoint of the user's, then evaluated on images (the extractor rebuilt from the same file, checked by hash)."
    import timm, torch

    torch.save(timm.create_model('resnet10t', num_classes=0).state_dict(), tmp_path / 'mine.pth')
    r = run(
        'bm-train',
        '--data',
        photos / 'photos',
        '--extractors',
        f"timm/resnet10t={tmp_path / 'mine.pth'}",
        '--split',
        'class',
        '--epochs',
        '1',
        '--batch',
        '16',
        '--eval_every',
        '5',
        '--workers',
        '0',
        '--log',
        'none',
        '--cache',
        tmp_path / 'f.h5',
        '--out',
        tmp_path / 'run',
    )
    assert r.returncode == 0, r.stderr
    best = json.loads((tmp_path / 'run' / 'models' / 'best.json').read_text())
    assert best['extractors'] == ['timm/resnet10t'] and best['extractor_info']['timm/resnet10t']['model_id'] == str(
        tmp_path / 'mine.pth'
    )
    ev = run(
        'bm-eval',
        '--checkpoint',
        tmp_path / 'run' / 'models' / 'best.pth',
        '--data',
        photos / 'photos',
        '--out',
        tmp_path / 'report',
    )
    assert ev.returncode == 0, ev.stderr
    torch.save(
        timm.create_model('resnet10t', num_classes=0).state_dict(), tmp_path / 'mine.pth'
    )  # other weights under the same name
    ev = run(
        'bm-eval',
        '--checkpoint',
        tmp_path / 'run' / 'models' / 'best.pth',
        '--data',
        photos / 'photos',
        '--out',
        tmp_path / 'report2',
    )
    assert one_line_error(ev, 'bm-eval') and 'other weights than the model was trained on' in ev.stderr, ev.stderr


def test_missing_weights_fail_before_indexing(photos, tmp_path):
    "Offline, pretrained weights that are not here fail at once: before the folder is indexed (no index report printed)."
    for script, args in (
        ('bm-extract', ['--extractors', 'resnet', '--out', tmp_path / 'f.h5']),
        ('bm-train', ['--resnet', '1', '--out', tmp_path / 'o']),
    ):
        r = run(script, '--data', photos / 'photos', *args)
        assert one_line_error(r, script) and 'cannot load pretrained weights' in r.stderr, r.stderr
        assert 'BuildingIndex' not in r.stdout + r.stderr


def test_frozen_features_without_checkpoint(photos, tmp_path):
    assert (
        run(
            'bm-extract',
            '--data',
            photos / 'photos',
            '--extractors',
            'resnet',
            '--tiny',
            '1',
            '--split',
            'class',
            '--out',
            tmp_path / 'f.h5',
        ).returncode
        == 0
    )
    r = run('bm-eval', '--data', tmp_path / 'f.h5', '--out', tmp_path / 'rep')
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / 'rep' / 'metrics.json').read_text())
    with FeatureCache(tmp_path / 'f.h5') as c:  # standardised with the training rows, scored on the unseen
        x, tr, te = c.features('resnet'), c.split_of == 'train', c.split_of == 'test'
        z = (x - x[tr].mean(0)) / (x[tr].std(0) + 1e-6)
        assert (
            abs(
                m['frozen_features']['resnet (standardised)']['unseen_buildings']['map_at_r']
                - pml_map_at_r(z[te], c.labels[te])
            )
            < 1e-6
        )
    r = run('bm-eval', '--data', photos / 'photos', '--out', tmp_path / 'rep2')
    assert one_line_error(r, 'bm-eval') and 'without --checkpoint' in r.stderr, r.stderr


def test_default_split_works_on_eleven_folders_of_eight_photos(tmp_path):
    "The default bm-train on 11 buildings x 8 photos: held-out photos are queries against the training photos of their buildings."
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    write_synthetic(tmp_path / 'photos', 'folders', n_identities=11, views=8, size=48)
    before = sorted((p.relative_to(tmp_path / 'photos'), p.stat().st_mtime) for p in (tmp_path / 'photos').rglob('*'))
    r = run(
        'bm-train',
        '--data',
        tmp_path / 'photos',
        '--resnet',
        '1',
        '--tiny',
        '1',
        '--epochs',
        '2',
        '--lr',
        '0.01',
        '--batch',
        '16',
        '--eval_every',
        '5',
        '--out',
        tmp_path / 'run',
    )
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / 'run' / 'metrics.json').read_text())
    assert m['against'] == 'training photos'
    head, _ = load_head(tmp_path / 'run' / 'models' / 'best.pth')
    with FeatureCache(default_cache(tmp_path / 'photos')) as c, torch.no_grad():
        q, r_ = (head(torch.from_numpy(c.features('resnet', s))) for s in (m['split'], 'train'))
        yq, yr = c.labels[c.rows(m['split'])], c.labels[c.rows('train')]
    calc = AccuracyCalculator(
        include=('mean_average_precision_at_r',), k='max_bin_count', knn_func=CustomKNN(CosineSimilarity())
    )
    want = calc.get_accuracy(q, torch.as_tensor(yq), r_, torch.as_tensor(yr), ref_includes_query=False)[
        'mean_average_precision_at_r'
    ]
    assert abs(m['map_at_r'] - want) < 1e-6  # computed by pytorch-metric-learning, queries vs references
    assert (
        sorted((p.relative_to(tmp_path / 'photos'), p.stat().st_mtime) for p in (tmp_path / 'photos').rglob('*'))
        == before
    )


def test_a_collection_that_cannot_be_validated_fails_before_extraction(tmp_path):
    write_synthetic(tmp_path / 'photos', 'folders', n_identities=6, views=1, size=48)  # one photo per building
    r = run(
        'bm-train',
        '--data',
        tmp_path / 'photos',
        '--resnet',
        '1',
        '--tiny',
        '1',
        '--split',
        'class',
        '--out',
        tmp_path / 'run',
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith(
        'bm-train: error: the validation split'
    ), r.stderr
    assert not default_cache(tmp_path / 'photos').exists()  # refused before extracting anything


# (the losses with a margin; 04a_metric.losses reads every loss of the registry back the same way, without training)
@pytest.mark.parametrize('loss', ['arcface', 'proxy_anchor', 'triplet', 'adaface', 'curricularface'])
def test_each_loss_trains_with_the_settings_it_records(photos, loss):
    from building_metric.config import TrainConfig
    from building_metric.metric.losses import list_losses

    assert loss in list_losses() and len(list_losses()) == 9  # (a new loss joins this list)
    (photos / 'cfg.yaml').write_text("split: class\nresnet: 1\ntiny: true\nepochs: 1\nlr: 1.0e-3\nbatch: 16\n")
    out = photos / f'loss_{loss}'
    r = run('bm-train', '--config', photos / 'cfg.yaml', '--data', photos / 'photos', '--loss', loss, '--out', out)
    assert r.returncode == 0, r.stderr
    asked = TrainConfig.from_yaml(out / 'config.yaml').loss_args  # recorded in the run's config.yaml
    built = json.loads((out / 'metrics.json').read_text())['loss']  # read back from the object that trained
    assert built.pop('name') == loss and set(asked) == set(built)
    for k in asked:
        assert asked[k] == built[k] if isinstance(asked[k], str) else abs(asked[k] - built[k]) < 1e-9
    if loss == 'arcface':
        assert abs(built['margin'] - 28.6) < 1e-9 and built['scale'] == 64.0  # degrees, not --margin's 0.2
    if loss == 'proxy_anchor':
        assert built['margin'] == 0.2 and built['alpha'] == 32.0
    if loss in ('adaface', 'curricularface'):  # their papers' defaults, in radians
        assert built['margin'] == {'adaface': 0.4, 'curricularface': 0.5}[loss] and built['scale'] == 64.0
