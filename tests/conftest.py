"Shared by the tests: console scripts run in this process (the same code path as the installed `bm-*`, without a fresh interpreter importing torch each time)."
import io, os, subprocess, sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

os.environ.setdefault('HF_HUB_OFFLINE', '1')
os.environ.setdefault('WANDB_MODE', 'offline')
BIN = Path(sys.executable).parent
ENV = dict(os.environ, HF_HUB_OFFLINE='1', WANDB_MODE='offline')

def run(script:str, *args) -> subprocess.CompletedProcess:
    "`bm-<command> ARGS` run in this process: its exit code, stdout and stderr, as a subprocess would give them."
    from building_metric.cli import COMMANDS
    cmd = script.removeprefix('bm-')
    out, err, code = io.StringIO(), io.StringIO(), 0
    with redirect_stdout(out), redirect_stderr(err):
        try: COMMANDS[cmd](list(map(str, args)))
        except SystemExit as e: code = e.code if isinstance(e.code, int) else 1
    return subprocess.CompletedProcess([script, *map(str, args)], code, out.getvalue(), err.getvalue())

def spawn(script:str, *args, **kw) -> subprocess.Popen:
    "The installed console script in a new process (for tests that kill it, or that need several processes)."
    return subprocess.Popen([str(BIN/script), *map(str, args)], env=ENV, **kw)

def one_line_error(r, script:str) -> bool:
    "Exit code 2 and one line on stderr that starts with the script's name."
    lines = [l for l in r.stderr.strip().splitlines() if l.strip()]
    return r.returncode == 2 and len(lines) == 1 and lines[0].startswith(f'{script}: error: ')

# Property-based tests (test_fuzz.py): a few examples per property in `make test`, many with HYPOTHESIS_PROFILE=slow
# (`make test-slow`); no example database, so that a test run writes nothing into the checkout.
from hypothesis import HealthCheck, settings
settings.register_profile('default', max_examples=20, deadline=None, database=None, derandomize=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile('slow', max_examples=500, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'default'))
