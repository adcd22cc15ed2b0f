"The import rule of ARCHITECTURE.md (its floors) holds for the package, and the checker catches each kind of breach."

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / 'tools'))
from check_imports import check


def test_the_package_keeps_the_floors():
    assert check(Path(__file__).parent.parent / 'building_metric') == []


def test_the_checker_catches_cycles_private_names_and_higher_floors(tmp_path):
    pkg = tmp_path / 'building_metric'
    (pkg / 'data').mkdir(parents=True)
    for f in ('__init__.py', 'data/__init__.py'):
        (pkg / f).write_text('')
    (pkg / 'core.py').write_text(
        'def f():\n    from building_metric.train import train\n'
    )  # a function-level import counts
    (pkg / 'train.py').write_text(
        'from building_metric.core import f\nfrom building_metric.data.index import _helper\ndef train(): pass\n'
    )
    (pkg / 'data' / 'index.py').write_text('from ..config import x\n_helper = 1\n')
    (pkg / 'config.py').write_text('x = 1\n')
    (pkg / 'extra.py').write_text('')
    problems = check(pkg)
    assert 'building_metric.core (floor 0) imports building_metric.train (floor 6)' in problems
    assert 'building_metric.train imports the private _helper from building_metric.data.index' in problems
    assert any(
        p.startswith('cycle: building_metric.core -> building_metric.train -> building_metric.core') for p in problems
    )
    assert 'building_metric.extra has no floor: add it to FLOORS in tools/check_imports.py' in problems
    assert not any('data.index' in p and 'floor' in p for p in problems)  # a lower floor is fine


def test_every_extra_an_error_names_exists_and_all_holds_them():
    "A missing optional package is a one-line error naming the extra that installs it: that extra exists, and [all] holds it."
    import re, tomllib
    from pathlib import Path

    root = Path(__file__).parent.parent
    extras = tomllib.loads((root / 'pyproject.toml').read_text())['project']['optional-dependencies']
    import ast

    sources = [p.read_text() for p in (root / 'building_metric').rglob('*.py')]
    named = set(re.findall(r'building_metric\[(\w+)\]', ''.join(sources)))
    required = set()  # the extras `core.require` is told of: its third argument, or `extra=`
    for node in (n for src in sources for n in ast.walk(ast.parse(src))):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', None) == 'require':
            args = node.args[2:3] + [k.value for k in node.keywords if k.arg == 'extra']
            required |= {a.value for a in args if isinstance(a, ast.Constant) and a.value}
    assert required >= {'mesh', 'deploy', 'adapters', 'verify', 'mlflow'}, required
    named |= required
    assert named and named <= set(extras), named - set(extras)
    all_ = set(re.findall(r'\[([\w,]+)\]', extras['all'][0])[0].split(','))
    assert all_ == set(extras) - {'dev', 'all'}, all_


def test_a_missing_faiss_names_the_extra(monkeypatch):
    import pytest
    from building_metric.core import BuildingMetricError
    import building_metric.retrieval.index as index

    monkeypatch.setattr(index, 'faiss_module', lambda: None)
    with pytest.raises(BuildingMetricError, match=r'pip install building_metric\[search\]'):
        index.build_index(__import__('numpy').eye(4, dtype='float32'), 'ivf')


def test_the_answering_path_imports_no_training_code():
    "`bm-search` and `bm-index` start with what an answer needs (torch, the model, the index): the heavy imports of training and pictures wait until asked for."
    import subprocess

    heavy = (
        'fastai',
        'torchvision',
        'matplotlib',
        'sympy',
        'torch._dynamo',
        'fastprogress',
        'sklearn',
        'timm',
        'transformers',
    )
    code = (
        "import sys; import building_metric.search, building_metric.jobs.search, building_metric.cli; "
        f"print([m for m in {heavy!r} if m in sys.modules], type(sys.modules.get('pandas')).__name__)"
    )
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split() == ['[]', '_LazyModule'], (
        r.stdout,
        r.stderr[-500:],
    )  # pandas: at first use


def test_one_place_to_start():
    "`import building_metric as bm` gives the entry points by name, each the object its module defines, imported on first use."
    import importlib
    import subprocess

    code = (
        'import sys, building_metric as bm\n'
        'assert not {"torch", "fastai", "timm", "pandas"} & set(sys.modules), "import building_metric must stay light"\n'
        'print(len(bm.__all__), bm.BuildingIndex.__module__)'
    )
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    import building_metric as bm

    assert r.stdout.split() == [str(len(bm.__all__)), 'building_metric.data.index']
    for name, mod in bm.PUBLIC.items():
        assert getattr(bm, name) is getattr(importlib.import_module(f'building_metric.{mod}'), name), name
    assert set(bm.__all__) <= set(dir(bm)) and 'train' not in bm.__all__  # (bm.train is the module)


def test_every_console_script_runs_a_job_from_the_jobs_package():
    "`cli` points every script at `building_metric.jobs.<module>:<function>`, and each of them imports."
    import importlib

    from building_metric.cli import COMMANDS

    for name, s in COMMANDS.items():
        mod, fn = s.job.split(':')
        assert mod.startswith('building_metric.jobs.'), (name, s.job)
        assert callable(getattr(importlib.import_module(mod), fn)), s.job


def test_every_moved_name_is_found_at_its_old_path_and_the_library_uses_the_new_one():
    "Each `core.moved` shim gives the very object of the new home, with a DeprecationWarning; no module imports a moved name from its old home."
    import ast, importlib, warnings
    from pathlib import Path

    import building_metric

    root = Path(building_metric.__file__).parent
    shims = {}
    for f in sorted(root.rglob('*.py')):
        parts = f.relative_to(root.parent).with_suffix('').parts
        name = '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)
        if 'moved(' in f.read_text():
            ga = getattr(importlib.import_module(name), '__getattr__', None)
            if ga is not None and hasattr(ga, 'moved'):
                shims[name] = ga.moved
    assert {'building_metric.features.cache', 'building_metric.search.jobs', 'building_metric.metric.siamese'} <= set(
        shims
    )
    for old, names in shims.items():
        for n, new in names.items():
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter('always')
                got = getattr(importlib.import_module(old), n)
            assert got is getattr(importlib.import_module(new), n), (old, n)
            assert any(issubclass(x.category, DeprecationWarning) and new in str(x.message) for x in w), (old, n)
    for f in sorted(root.rglob('*.py')):
        here = list(f.relative_to(root.parent).with_suffix('').parts)
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = here[: len(here) - node.level] if node.level else []  # (the package of a relative import)
                mod = '.'.join(base + ([node.module] if node.module else []))
                bad = [a.name for a in node.names if a.name in shims.get(mod, {})]
                assert not bad, f'{f.relative_to(root)} imports {bad} from {mod}, their old home'


UNDOCUMENTED = 826  # parameters of public functions with no doc of their own: may only go down


def test_each_parameter_has_its_own_docment_line_and_the_undocumented_do_not_grow(tmp_path):
    "Docments the docs read right: no comment shared by parameters, none on the line `) -> T:` holds a parameter on; the checker catches both."
    sys.path.insert(0, str(Path(__file__).parent.parent / 'tools'))
    from check_docments import check

    import building_metric

    problems, missing = check(Path(building_metric.__file__).parent)
    assert problems == [], '\n'.join(problems)
    assert len(missing) <= UNDOCUMENTED, (
        f'{len(missing)} parameters without a doc, more than {UNDOCUMENTED}: document the new ones'
    )
    pkg = tmp_path / 'building_metric'
    pkg.mkdir()
    (pkg / 'm.py').write_text(
        'def f(a, b, # Both\n      c=0) -> int: # Meant for c\n    return 1\n'
        'def g(x, # The x\n      y, # The y\n     ) -> int: # The result\n    return 2\n'
    )
    problems, missing = check(pkg)
    assert problems == [
        'building_metric.m.f: one comment for a, b (line 1): one parameter per line',
        'building_metric.m.f: the comment on the line that closes the signature (line 2) documents the return, not c: give c a line of its own',
    ], problems
    assert missing == []
