"`bm-hpo`: a study killed (in its own process) in the middle of a trial resumes and completes; two workers on one study, one of them killed; bad settings are one-line errors."

import json, signal, subprocess, time

import optuna
import pandas as pd
import pytest
from building_metric.data.index import BuildingIndex
from building_metric.data.synth import write_synthetic
from building_metric.features.cache import extract_features
from building_metric.config import TrainConfig
from conftest import kill_when, one_line_error, run, spawn


@pytest.fixture(scope='module')
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp('hpo')
    idx = BuildingIndex.from_path(write_synthetic(root / 'photos', 'folders', n_identities=16, views=6, size=48)).split(
        by='class', seed=0
    )
    extract_features(idx, ['resnet'], root / 'features.h5', tiny=True, pretrained=False, progress=None)
    TrainConfig(data=str(root / 'features.h5'), resnet=1, epochs=3, batch=32, eval_every=3, patience=0).to_yaml(
        root / 'base.yaml'
    )
    return root


def test_killed_study_resumes_and_completes(base, tmp_path):
    def start(a):  # a fresh study for each attempt
        (tmp_path / 'hpo.yaml').write_text(
            f"train: {base / 'base.yaml'}\nout: {tmp_path / f'hpo{a}'}\nn_trials: 3\nheartbeat: 1\n"
            "space:\n  lr: [log, 1.0e-4, 1.0e-2]\n  emb_dim: [choice, 32, 64]\n"
        )
        return spawn('bm-hpo', '--config', tmp_path / 'hpo.yaml', stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    a = kill_when(start, lambda a: (tmp_path / f'hpo{a}' / 'trial_1').exists())  # inside trial 1
    hpo = tmp_path / f'hpo{a}'
    url = f"sqlite:///{(hpo / 'study.db').resolve()}"
    states = [t.state.name for t in optuna.load_study(study_name='building_metric', storage=url).trials]
    assert states == ['COMPLETE', 'RUNNING'], states  # killed inside trial 1
    time.sleep(2.5)  # past the grace period of the missed heartbeats
    r = run('bm-hpo', '--config', tmp_path / 'hpo.yaml')
    assert r.returncode == 0, r.stderr
    trials = optuna.load_study(study_name='building_metric', storage=url).trials
    assert [t.state.name for t in trials].count('FAIL') == 1  # the killed trial, marked failed ...
    assert sum(t.state.name in ('COMPLETE', 'PRUNED') for t in trials) == 3  # ... and the study completed its 3 trials
    assert any(t.system_attrs.get('failed_trial') == 1 for t in trials)  # the killed trial was run again
    best = json.loads(r.stdout)
    df = pd.read_csv(hpo / 'trials.csv')
    assert best['value'] == pytest.approx(df.value.max()) and (hpo / 'best_config.yaml').is_file()


@pytest.mark.slow  # (in `make test-slow`: one run in about twelve saw the surviving worker exit 1; its stderr is now in the message)
def test_two_workers_one_killed_then_the_study_completes(base, tmp_path):
    (tmp_path / 'hpo.yaml').write_text(
        f"train: {base / 'base.yaml'}\nout: {tmp_path / 'hpo'}\nn_trials: 4\nheartbeat: 1\n"
        "space:\n  lr: [log, 1.0e-4, 1.0e-2]\n"
    )
    ps = [
        spawn(
            'bm-hpo',
            '--config',
            tmp_path / 'hpo.yaml',
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f'w{i}.log', 'w'),
        )
        for i in range(2)
    ]
    deadline = time.time() + 300
    while (
        all(p.poll() is None for p in ps)
        and time.time() < deadline
        and len(list((tmp_path / 'hpo').glob('trial_*'))) < 3
    ):
        time.sleep(0.05)
    ps[0].send_signal(signal.SIGKILL)
    ps[0].wait()  # one worker dies (inside a trial, most likely)
    assert ps[1].wait(timeout=300) == 0, (tmp_path / 'w1.log').read_text()[-3000:]  # the other finishes the study
    time.sleep(2.5)
    r = run('bm-hpo', '--config', tmp_path / 'hpo.yaml')  # and a restart finds nothing half-done
    assert r.returncode == 0, r.stderr
    url = f"sqlite:///{(tmp_path / 'hpo' / 'study.db').resolve()}"
    trials = optuna.load_study(study_name='building_metric', storage=url).trials
    states = [t.state.name for t in trials]
    assert sum(s in ('COMPLETE', 'PRUNED') for s in states) >= 4 and 'RUNNING' not in states, states
    df = pd.read_csv(tmp_path / 'hpo' / 'trials.csv')  # written by both workers: whole, and of every trial
    assert sorted(df.number) == [t.number for t in trials]
    assert not list((tmp_path / 'hpo').glob('.*.tmp'))


def test_bad_settings_are_one_line(base, tmp_path):
    cases = [
        (['--n_trials', '0'], '--n_trials 0 is not allowed'),
        (
            ['--train', str(base / 'base.yaml'), '--space', '{lrate: [log, 1.0e-4, 1.0e-2]}'],
            "'lrate' is not a bm-train setting",
        ),
        (['--out', str(tmp_path / 'o')], 'the base run has no data'),
    ]
    for a, expect in cases:
        r = run('bm-hpo', *a)
        assert one_line_error(r, 'bm-hpo') and expect in r.stderr, (a, r.stderr)
