"Shared by the tests: console scripts run in this process (the same code path as the installed `bm-*`, without a fresh interpreter importing torch each time)."

import io, os, signal, subprocess, sys, time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('WANDB_MODE', 'offline')
BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', WANDB_MODE='offline')


def run(script: str, *args) -> subprocess.CompletedProcess:
    "`bm-<command> ARGS` run in this process: its exit code, stdout and stderr, as a subprocess would give them."
    from building_metric.cli import COMMANDS

    cmd = script.removeprefix('bm-')
    out, err, code = io.StringIO(), io.StringIO(), 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            COMMANDS[cmd](list(map(str, args)))
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess([script, *map(str, args)], code, out.getvalue(), err.getvalue())


def spawn(script: str, *args, **kw) -> subprocess.Popen:
    "The installed console script in a new process (for tests that kill it, or that need several processes)."
    return subprocess.Popen([str(BIN / script), *map(str, args)], env=ENV, **kw)


# A console script in a new process whose fastai Learners append "epoch batch" to the file $BM_TEST_BEACON after every
# training batch (through fastai's default callbacks): a kill is then synchronised on the run's own progress, not on a clock.
_WATCHED = """
import os, sys
from fastai.callback.core import Callback
from fastcore.basics import defaults
class Beacon(Callback):
    order = 100
    def after_batch(self):
        if self.training:
            with open(os.environ['BM_TEST_BEACON'], 'a') as f: f.write(f"{self.epoch} {self.iter}\\n")
defaults.callbacks = list(defaults.callbacks) + [Beacon]
from building_metric.cli import main
main(sys.argv[1:])
"""


def spawn_watched(script: str, beacon: Path, *args, **kw) -> subprocess.Popen:
    "`bm-<command> ARGS` in a new process that reports each training batch (its epoch and number) on a line of `beacon`."
    return subprocess.Popen(
        [sys.executable, '-c', _WATCHED, script.removeprefix('bm-'), *map(str, args)],
        env=dict(ENV, BM_TEST_BEACON=str(beacon)),
        **kw,
    )


def at_batch(beacon: Path, epoch: int, batch: int) -> bool:
    "Whether the beacon says training has reached `batch` of `epoch` (or gone past it)."
    if not beacon.is_file():
        return False
    lines = beacon.read_text().split('\n')[:-1]  # (a line still being written is not read)
    return bool(lines) and tuple(map(int, lines[-1].split())) >= (epoch, batch)


def inside_epoch(
    beacon_of,  # attempt -> its beacon file
    epoch: int = 1,
):
    """`ready` for `kill_when`: training has reached a batch of `epoch` drawn at random (neither its first nor its last two),
    once the epoch before has told how many batches an epoch has; `ready.target[attempt]` is the batch drawn."""
    import numpy as np

    rng, target = np.random.default_rng(), {}

    def ready(a):
        b = beacon_of(a)
        if a not in target and at_batch(b, epoch, 0):
            n = 1 + max(int(l.split()[1]) for l in b.read_text().splitlines() if l.split()[0] == str(epoch - 1))
            assert n >= 4, f'an epoch of {n} batches is too short to be killed inside'
            target[a] = int(rng.integers(1, n - 2))
        return a in target and at_batch(b, epoch, target[a])

    ready.target = target
    return ready


def kill_when(
    start,  # start(attempt) -> Popen: a fresh run (its own output folder) for each attempt
    ready,  # ready(attempt) -> bool: the run has reached the point where it is to be killed
    attempts: int = 3,
    timeout: float = 600,
) -> int:
    """SIGKILL a process as soon as `ready` holds (polled every 20 ms): synchronised on its progress, never on a clock.
    A process that ends before it can be killed is started again; returns the attempt that was killed."""
    for a in range(attempts):
        p, deadline = start(a), time.time() + timeout
        while p.poll() is None and not ready(a):
            assert time.time() < deadline, f'the process did not reach the point to kill it at in {timeout} s'
            time.sleep(0.02)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait()
            return a
    raise AssertionError(f'the process ended before it could be killed, {attempts} times in a row')


def assert_same_weights(a: Path, b: Path, files=('last.pth', 'best.pth'), atol: float = 1e-6):
    "The weights in `models/<file>` of two run folders are equal within `atol` (a `last.pth` holds them under 'model')."
    import torch

    for f in files:
        x, y = (torch.load(d / 'models' / f, weights_only=True) for d in (a, b))
        x, y = (z['model'] if 'model' in z else z for z in (x, y))
        assert x.keys() == y.keys(), f
        for k in x:
            torch.testing.assert_close(y[k], x[k], atol=atol, rtol=1e-5, msg=lambda m: f"{f} {k}: {m}")


def pml_map_at_r(emb, labels) -> float:
    "Leave-one-out MAP@R by cosine similarity, computed by pytorch-metric-learning (not by this library)."
    import torch
    from pytorch_metric_learning.distances import CosineSimilarity
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    calc = AccuracyCalculator(
        include=('mean_average_precision_at_r',), k='max_bin_count', knn_func=CustomKNN(CosineSimilarity())
    )
    return calc.get_accuracy(torch.as_tensor(emb).float(), torch.as_tensor(labels), ref_includes_query=True)[
        'mean_average_precision_at_r'
    ]


def map_at_r_range(emb, labels, tol: float = 1e-5) -> tuple[float, float]:
    "Leave-one-out MAP@R by cosine similarity, by hand, with neighbours whose similarities round alike at `tol` taken wrong-first and right-first: where float rounding decides a tie (another CPU, another thread count, another batch), a correct MAP@R lies between the two; without ties they are equal."
    import numpy as np, torch

    e = torch.nn.functional.normalize(torch.as_tensor(emb).float(), dim=1).numpy().astype(np.float64)
    y, s = np.asarray(labels), None
    s = e @ e.T
    out = []
    for worst in (True, False):
        aps = []
        for q in range(len(y)):
            others = np.delete(np.arange(len(y)), q)
            rel = y[others] == y[q]
            order = np.lexsort((rel if worst else ~rel, -np.round(s[q, others] / tol)))
            n = int(rel.sum())
            if n:
                r = rel[order][:n]
                aps.append(float((np.cumsum(r) / np.arange(1, n + 1) * r).sum() / n))
        out.append(float(np.mean(aps)))
    return out[0], out[1]


def one_line_error(r, script: str) -> bool:
    "Exit code 2 and one line on stderr that starts with the script's name."
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    return r.returncode == 2 and len(lines) == 1 and lines[0].startswith(f'{script}: error: ')


# Property-based tests (test_fuzz.py): a few examples per property in `make test`, many with HYPOTHESIS_PROFILE=slow
# (`make test-slow`); no example database, so that a test run writes nothing into the checkout.
from hypothesis import HealthCheck, settings

settings.register_profile(
    'default',
    max_examples=20,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    'slow',
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'default'))


def sharded_gallery(tmp_path: Path, shards: int = 3) -> tuple[Path, Path]:
    "A gallery of 8 geo-tagged buildings x 4 photos split by `bm-index --shards`, and a folder of 6 new photos to search with: (gallery folder, query folder)."
    from building_metric.data.synth import write_synthetic

    write_synthetic(tmp_path / 'geo', 'geo', n_identities=8, views=4, size=48, seed=0)
    write_synthetic(tmp_path / 'new', 'geo', n_identities=3, views=2, size=48, seed=1)
    args = ['--extractors', 'resnet', '--tiny', '1', '--gallery', tmp_path / 'geo', '--out', tmp_path / 'g']
    r = run('bm-index', *args, '--workers', '0', '--shards', str(shards))
    assert r.returncode == 0, r.stderr
    return tmp_path / 'g', tmp_path / 'new'
