"`make lint` (ruff, configured in pyproject.toml) fails on an unused import, a badly formatted file and a notebook cell that imports what it does not use; `make format` mends them."

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
RUFF = Path(sys.executable).parent / 'ruff'


def ruff(*args, cwd):
    return subprocess.run(
        [str(RUFF), *map(str, args), '--no-cache', '--config', str(ROOT / 'pyproject.toml')],
        cwd=cwd,
        capture_output=True,
        text=True,
    )


def test_lint_catches_and_format_mends(tmp_path):
    (tmp_path / 'unused.py').write_text('import os\n\nprint(1)\n')
    (tmp_path / 'layout.py').write_text('x = {  "a":1}\n')
    nb = dict(
        cells=[
            dict(
                cell_type='code',
                id='a1',
                metadata={},
                execution_count=None,
                outputs=[],
                source=['import json\n', 'x = 1\n'],
            )
        ],
        metadata={},
        nbformat=4,
        nbformat_minor=5,
    )
    (tmp_path / 'page.ipynb').write_text(json.dumps(nb))
    r = ruff('check', 'unused.py', 'page.ipynb', cwd=tmp_path)
    assert r.returncode == 1 and r.stdout.count('F401') == 2, r.stdout
    f = ruff('format', '--check', 'layout.py', cwd=tmp_path)
    assert f.returncode == 1 and 'layout.py' in f.stdout
    assert (
        ruff('format', 'layout.py', cwd=tmp_path).returncode == 0
        and ruff('check', '--fix', 'unused.py', 'page.ipynb', cwd=tmp_path).returncode == 0
    )
    assert (tmp_path / 'layout.py').read_text() == 'x = {"a": 1}\n' and 'import os' not in (
        tmp_path / 'unused.py'
    ).read_text()
    assert ruff('check', 'unused.py', 'page.ipynb', cwd=tmp_path).returncode == 0


def test_the_tree_is_clean():
    assert ruff('format', '--check', 'tools', 'benchmarks', 'tests', cwd=ROOT).returncode == 0
    r = ruff('check', 'tools', 'benchmarks', 'tests', 'nbs', cwd=ROOT)
    assert r.returncode == 0, r.stdout
