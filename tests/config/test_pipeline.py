"One pipeline file through bm-extract, bm-train and bm-eval; bm-demo and bm-pair-train from configs; bad configs for every script."

import json, subprocess, sys
from pathlib import Path

import pandas as pd
import yaml
from building_metric.cli import COMMANDS
from building_metric.data.synth import write_synthetic
from conftest import BIN, ENV, one_line_error, run

CONFIGS = Path(__file__).parents[2] / 'configs'


def test_one_pipeline_file_step_by_step(tmp_path):
    write_synthetic(tmp_path / 'photos', 'folders', n_identities=16, views=6, size=48)
    cfg = tmp_path / 'exp.yaml'
    cfg.write_text(
        f"data: {tmp_path / 'photos'}\nout: {tmp_path / 'runs'}\nseed: 1\n"
        "extract: {extractors: 'resnet,mobilenet', tiny: true, workers: 0, split: class}\n"
        "train: {resnet: 1, mobilenet: 1, epochs: 4, lr: 1.0e-2, batch: 32, eval_every: 10, patience: 0}\n"
    )
    ex = run('bm-extract', '--config', cfg)
    assert ex.returncode == 0, ex.stderr
    assert json.loads(ex.stdout)['rows'] == 96 and (tmp_path / 'runs' / 'features.yaml').is_file()
    tr = run('bm-train', '--config', cfg, 'epochs=3')  # a plain key: the script's own section
    assert tr.returncode == 0, tr.stderr
    resolved = yaml.safe_load((tmp_path / 'runs' / 'train' / 'config.yaml').read_text())
    assert (resolved['data'], resolved['epochs'], resolved['seed']) == (str(tmp_path / 'runs' / 'features.h5'), 3, 1)
    assert (
        json.loads(tr.stdout)['map_at_r']
        == json.loads((tmp_path / 'runs' / 'train' / 'metrics.json').read_text())['map_at_r']
    )
    ev = run('bm-eval', '--config', cfg, 'eval.out=' + str(tmp_path / 'rep'))  # a dotted key: the file
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout) == json.loads((tmp_path / 'rep' / 'metrics.json').read_text())
    assert yaml.safe_load((tmp_path / 'rep' / 'config.yaml').read_text())['checkpoint'] == str(
        tmp_path / 'runs' / 'train' / 'models' / 'best.pth'
    )
    assert (tmp_path / 'rep' / 'gallery.png').is_file()  # images found through the shared data folder


def test_demo_from_a_config(tmp_path):
    (tmp_path / 'demo.yaml').write_text("identities: 8\nviews: 6\nsize: 32\nepochs: 2\n")
    r = run('bm-demo', '--config', tmp_path / 'demo.yaml', '--out', tmp_path / 'd')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert (
        lines[0].startswith('seen buildings heldout views: NCM top-1')
        and lines[-1] == f"report: {tmp_path / 'd' / 'report' / 'report.md'}"
    )
    assert yaml.safe_load((tmp_path / 'd' / 'config.yaml').read_text())['identities'] == 8
    assert (tmp_path / 'd' / 'report' / 'report.md').is_file()


def test_pair_model_from_the_siamese_config(tmp_path):
    write_synthetic(tmp_path / 'geo', 'geo', n_identities=16, views=4, size=32)
    r = run(
        'bm-pair-train',
        '--config',
        CONFIGS / 'siamese.yaml',
        '--data',
        tmp_path / 'geo',
        '--out',
        tmp_path / 'pairs',
        'tiny=true',
        'pretrained=false',
        'size=32',
        'epochs=2',
        'batch=16',
        'proj=[32, 16]',
        'log=csv',
    )
    assert r.returncode == 0, r.stderr
    m = json.loads(r.stdout)
    assert m == json.loads((tmp_path / 'pairs' / 'metrics.json').read_text()) and m['split'] == 'test'
    resolved = yaml.safe_load((tmp_path / 'pairs' / 'config.yaml').read_text())
    assert (resolved['arch'], resolved['hard'], resolved['size']) == (
        'resnet50',
        'geo',
        32,
    )  # the file, then flags, then overrides
    assert {p.name for p in (tmp_path / 'pairs' / 'models').iterdir()} == {'best.pth', 'best.json', 'last.pth'} and (
        tmp_path / 'pairs' / 'attention.png'
    ).is_file()
    from building_metric.data.index import (
        BuildingIndex,
    )  # the reported ROC-AUC: the saved model's on the test pairs, by scikit-learn
    from building_metric.metric.siamese import load_pair_model, pair_dataloaders, predict_pairs
    from sklearn.metrics import roc_auc_score

    c = resolved
    model, meta = load_pair_model(tmp_path / 'pairs')
    ev = pd.read_csv(tmp_path / 'pairs' / 'evaluations.csv')
    assert (
        meta['threshold'] == m['threshold'] and meta['value'] == ev.value.max() and meta['metric'] == 'pair_auc'
    )  # the best validation ROC-AUC
    index = BuildingIndex.from_path(tmp_path / 'geo', progress=False).split(by=c['split'], seed=c['seed'])
    dl = pair_dataloaders(
        index,
        size=c['size'],
        bs=c['batch'],
        valid='test',
        hard=c['hard'],
        hard_frac=c['hard_frac'],
        augment=False,
        seed=c['seed'] + 2,
        num_workers=0,
    ).valid
    prob, target, _ = predict_pairs(model, dl)
    assert abs(m['roc_auc'] - roc_auc_score(target, prob)) < 1e-6, (m['roc_auc'], roc_auc_score(target, prob))


def test_bad_configs_are_one_line_with_exit_2(tmp_path):
    def pipe(name, text):
        (tmp_path / name).write_text(text)
        return tmp_path / name

    cases = [
        ('bm-extract', ['--config', pipe('e.yaml', "extractor: resnet\n")], "did you mean 'extractors'"),
        ('bm-extract', ['--config', pipe('p1.yaml', "extract: {bs: many}\n")], "config key 'extract.bs' must be int"),
        ('bm-train', ['--config', pipe('p2.yaml', "train: {lr: 1.0e-3}\n"), 'train.lrr=1'], "did you mean 'train.lr'"),
        (
            'bm-eval',
            ['--config', pipe('p3.yaml', f"out: {tmp_path / 'x'}\ntrain: {{data: {tmp_path / 'f.h5'}}}\n")],
            "not found",
        ),  # no best.pth yet
        ('bm-eval', [], "bm-eval needs --data"),
        ('bm-demo', ['--config', pipe('d.yaml', "identities: 3\n")], "--identities 3 is too few"),
        ('bm-hpo', ['--config', pipe('p4.yaml', "hpo: {n_trials: 0}\ntrain: {}\n")], "--n_trials 0 is not allowed"),
        ('bm-seg-train', ['--config', tmp_path / 'missing.yaml'], "config file"),
        ('bm-seg-infer', ['--config', pipe('p5.yaml', "seg_infer: {overlap: 2}\n")], "--overlap 2.0 is not allowed"),
        (
            'bm-pair-train',
            ['--config', pipe('p6.yaml', "pairs: {hard: embedding}\n")],
            "--hard 'embedding' is not allowed",
        ),
    ]
    for script, args, says in cases:
        r = run(script, *args)
        assert one_line_error(r, script) and says in r.stderr and r.stdout == '', (script, args, r.stderr)
    assert not (tmp_path / 'x').exists()  # a failed bm-eval wrote nothing


def test_installed_scripts_answer_before_importing_torch():
    "Each installed console script and `python -m building_metric.cli`, in a fresh process: --help, a bad flag, an unknown command."
    procs = [
        (
            s.prog,
            a,
            subprocess.Popen(
                [str(BIN / s.prog), *a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV
            ),
        )
        for s in COMMANDS.values()
        for a in (['--help'], ['--no_such_flag', '1'])
    ]
    procs.append(
        (
            'building_metric.cli',
            ['nope'],
            subprocess.Popen(
                [sys.executable, '-m', 'building_metric.cli', 'nope'],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=ENV,
            ),
        )
    )
    for prog, args, p in procs:
        out, err = p.communicate(timeout=120)
        if args == ['--help']:
            assert p.returncode == 0 and out.startswith(f'usage: {prog}') and 'key=value' in out, (prog, err)
        else:
            assert one_line_error(subprocess.CompletedProcess(args, p.returncode, out, err), prog) and out == '', (
                prog,
                args,
                err,
            )
