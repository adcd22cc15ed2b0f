"The house rules hold for the package (the floors of ARCHITECTURE.md, jobs, moved names, docments, keyword-only arguments), and each checker catches a breach."

import ast
import importlib
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


def _imports(f: Path, root: Path) -> list:
    "(module, names) of every import in the file `f` of the package at `root`, at its top or inside a function; relative imports resolved (`import a.b`: ('a.b', []))."
    here, out = list(f.relative_to(root.parent).with_suffix('').parts), []
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level] if node.level else []  # (the package of a relative import)
            out.append(('.'.join(base + ([node.module] if node.module else [])), [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


def test_every_moved_name_is_found_at_its_old_path_and_the_library_uses_the_new_one():
    "Each `core.moved` shim gives the very object of the new home, with a DeprecationWarning; no module imports a moved name from its old home."
    import importlib, warnings
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
        for mod, names in _imports(f, root):
            bad = [n for n in names if n in shims.get(mod, {})]
            assert not bad, f'{f.relative_to(root)} imports {bad} from {mod}, their old home'


def test_each_parameter_has_its_own_docment_line_and_none_is_undocumented(tmp_path):
    "Docments the docs read right: no comment shared by parameters, none on the line `) -> T:` holds a parameter on, no parameter without one; the checker catches each."
    sys.path.insert(0, str(Path(__file__).parent.parent / 'tools'))
    from check_docments import check

    import building_metric

    problems, missing = check(Path(building_metric.__file__).parent)
    assert problems == [], '\n'.join(problems)
    assert missing == [], f'{len(missing)} parameters without a doc of their own:\n' + '\n'.join(missing)
    pkg = tmp_path / 'building_metric'
    pkg.mkdir()
    (pkg / 'm.py').write_text(
        'def f(a, b, # Both\n      c=0) -> int: # Meant for c\n    return 1\n'
        'def g(x, # The x\n      y, # The y\n     ) -> int: # The result\n    return 2\n'
        'def h(n) -> int: # Meant for n\n    return 3\n'
        'def k(x, # The x\n      **kw) -> int: # Meant for kw\n    return 4\n'
        'def u(x, # The x\n      z=1):\n    return 5\n'
    )
    problems, missing = check(pkg)
    assert problems == [
        'building_metric.m.f: one comment for a, b (line 1): one parameter per line',
        'building_metric.m.f: the comment on the line that closes the signature (line 2) documents the return, not c: give c a line of its own',
        'building_metric.m.h: the comment on the line that closes the signature (line 8) documents the return, not n: give n a line of its own',
        'building_metric.m.k: the comment on the line that closes the signature (line 11) documents the return, not kw: give kw a line of its own',
    ], problems
    assert missing == ['building_metric.m.u(z)'], missing


def _undocumented(obj, name: str) -> list:
    "The parameters of a function, or of a class's public methods and constructor, that fastcore's `docments` (what `show_doc` renders) finds no doc for; a dataclass's fields may be documented in a base class."
    import dataclasses, inspect

    from fastcore.docments import docments

    if inspect.isfunction(obj):
        targets = [(name, obj)]
    else:
        targets = []
        for k, v in vars(obj).items():
            v = v.__func__ if isinstance(v, (classmethod, staticmethod)) else v
            if inspect.isfunction(v) and (not k.startswith('_') or k == '__init__'):
                targets.append((f'{name}.{k}', v))
        if dataclasses.is_dataclass(obj):  # its generated __init__ has no source: the fields' comments are its docs
            targets = [(q, obj if q.endswith('.__init__') else f) for q, f in targets]
            if not any(q.endswith('.__init__') for q, _ in targets):
                targets.append((f'{name}.__init__', obj))
    bases = [b for b in getattr(obj, '__mro__', ())[1:] if dataclasses.is_dataclass(b)]
    out = []
    for q, f in targets:
        for p, info in docments(f, full=True).items():
            if p in ('self', 'cls', 'return') or info.get('kind') in (
                inspect.Parameter.VAR_POSITIONAL,
                inspect.Parameter.VAR_KEYWORD,
            ):
                continue
            if not info['docment'] and not any(docments(b).get(p) for b in bases):
                out.append(f'{q}({p})')
    return out


def test_every_parameter_of_the_generated_pages_has_its_doc():
    "Every parameter of every name a module exports (functions, classes' constructors and public methods, dataclass fields) has a doc, as `show_doc` reads them (fastcore's `docments`), not as the checker above does."
    import importlib, inspect, pkgutil

    import building_metric

    bad, n = [], 0
    for m in pkgutil.walk_packages(building_metric.__path__, 'building_metric.'):
        if m.name.endswith('_modidx'):
            continue
        mod = importlib.import_module(m.name)
        for name in getattr(mod, '__all__', []):
            obj = getattr(mod, name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and obj.__module__ == mod.__name__:
                n += 1
                bad += [f'{m.name}.{q}' for q in _undocumented(obj, name)]
    assert n > 400, n  # the walk found the library
    assert bad == [], f'{len(bad)} parameters without a doc in the pages:\n' + '\n'.join(bad)

    def f(a, b, c):  # Meant for c, and read as its doc
        pass

    def g(
        x: int,  # The x
        y=0,
    ) -> int:  # The result
        pass

    assert _undocumented(f, 'f') == ['f(a)', 'f(b)'] and _undocumented(g, 'g') == ['g(y)']


POSITIONAL_OVERRIDES = {'compute_loss'}  # pytorch-metric-learning calls its losses' `compute_loss` positionally


def _wide(tree: ast.Module) -> list:
    "Functions and methods (`cls` of a module function counted: `hf_model` takes a class) with more than four positional parameters besides `self` / `cls`."
    out = []

    def walk(body, prefix, in_class):
        for n in body:
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                patched = any('patch' in ast.unparse(d) for d in n.decorator_list)
                skip = ('self', 'cls') if in_class or patched else ()
                pos = [p.arg for p in n.args.posonlyargs + n.args.args if p.arg not in skip]
                if len(pos) > 4 and n.name not in POSITIONAL_OVERRIDES:
                    out.append(f'{prefix}{n.name}({", ".join(pos)})')
            elif isinstance(n, ast.ClassDef):
                walk(n.body, f'{prefix}{n.name}.', True)

    walk(tree.body, '', False)
    return out


def test_no_call_can_pass_more_than_four_arguments_by_position():
    "Every function and method of the package, private ones too, takes at most four positional parameters (the rest keyword-only), and so does every dataclass's constructor."
    import dataclasses, inspect, pkgutil

    import building_metric

    root = Path(building_metric.__file__).parent
    wide = [f'{f.relative_to(root)}: {w}' for f in sorted(root.rglob('*.py')) for w in _wide(ast.parse(f.read_text()))]
    assert wide == [], 'more than four positional parameters (put a `*` before the fifth):\n' + '\n'.join(wide)
    seen = set()
    for m in pkgutil.walk_packages(building_metric.__path__, 'building_metric.'):
        if m.name.endswith('_modidx'):
            continue
        for k, v in vars(importlib.import_module(m.name)).items():
            if inspect.isclass(v) and dataclasses.is_dataclass(v) and v.__module__.startswith('building_metric'):
                seen.add(v)
    assert len(seen) > 20, len(seen)
    for c in seen:
        pos = [p for p in inspect.signature(c).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert len(pos) <= 4, (
            f'{c.__module__}.{c.__name__} takes {len(pos)} fields by position: `_: KW_ONLY` or kw_only=True'
        )
    # the scan sees what it must
    src = 'def f(a, b, c, d, e): pass\nclass K:\n    def m(self, a, b, c, d, *, e): pass\n    def n(self, a, b, c, d, e, f=1): pass\n'
    assert _wide(ast.parse(src)) == ['f(a, b, c, d, e)', 'K.n(a, b, c, d, e, f)']


def test_evaluation_never_imports_search():
    "`evaluation` and `search` are siblings on one floor; the runner of the benchmark protocols, which needs both, is a job (`jobs.benchmark`), so that no module of `evaluation` imports `search`, at its top or inside a function."
    import building_metric

    root = Path(building_metric.__file__).parent

    def imports(f: Path) -> set:
        return {mod for mod, _ in _imports(f, root)}

    bad = {
        str(f.relative_to(root)): sorted(m for m in imports(f) if m.startswith('building_metric.search'))
        for f in sorted((root / 'evaluation').glob('*.py'))
    }
    assert {k: v for k, v in bad.items() if v} == {}
    assert 'building_metric.search.model' in imports(
        root / 'jobs' / 'benchmark.py'
    )  # the scan sees an import of search


def test_every_callback_keeps_its_declared_place():
    "fastai orders callbacks by `order` alone: every `run_after` / `run_before` a callback of the package declares holds for the numbers (and a broken one is caught)."
    import pkgutil

    import fastai.callback.schedule  # noqa: F401  (ParamScheduler, which a declaration names)
    from fastai.callback.core import Callback

    import building_metric
    from building_metric.callbacks import order_problems

    for m in pkgutil.walk_packages(building_metric.__path__, 'building_metric.'):
        if not m.name.endswith('_modidx'):
            importlib.import_module(m.name)
    assert order_problems() == []
    declared = [c.__name__ for c in Callback.__subclasses__() if c.__module__.startswith('building_metric')]
    assert len(declared) > 10, declared

    class Late(Callback):
        order, run_before = 99, ('Recorder',)

    assert order_problems([Late]) == ['Late (order 99) must run before Recorder (order 50)']
