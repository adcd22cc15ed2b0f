"""Docments the generated docs read right (STYLE.md): each parameter of a public function documented on its own line.

A comment on a line that holds two or more parameters documents only the last of them in the docs, and a comment on the
line that closes the signature (`) -> T:`) documents the return value, not a parameter written on that line. Both are
refused here. Parameters with no doc at all are counted (`--missing` lists them).

Usage: python tools/check_docments.py [PACKAGE_DIR] [--missing]"""

import ast, io, sys, tokenize
from pathlib import Path


def comments(src: str) -> dict:
    "Line number -> the comment on it."
    out = {}
    for t in tokenize.generate_tokens(io.StringIO(src).readline):
        if t.type == tokenize.COMMENT:
            out[t.start[0]] = t.string
    return out


def public(tree: ast.Module) -> list:
    "The public functions and methods (of public classes) of a module: (qualified name, node)."
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith('_'):
            out.append((node.name, node))
        elif isinstance(node, ast.ClassDef) and not node.name.startswith('_'):
            for m in node.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not m.name.startswith('_') or m.name == '__init__'
                ):
                    out.append((f'{node.name}.{m.name}', m))
    return out


def check(pkg: Path) -> tuple[list, list]:
    "(problems, parameters without a doc) of every module under `pkg`."
    problems, missing = [], []
    for f in sorted(pkg.rglob('*.py')):
        if f.name == '_modidx.py':
            continue
        src = f.read_text()
        notes, mod = comments(src), '.'.join(f.relative_to(pkg.parent).with_suffix('').parts)
        for name, fn in public(ast.parse(src)):
            a = fn.args
            params = [p for p in a.posonlyargs + a.args + a.kwonlyargs if p.arg not in ('self', 'cls')]
            if not params:
                continue
            by_line = {}
            for p in params:
                by_line.setdefault(p.lineno, []).append(p.arg)
            for line, names in by_line.items():
                if len(names) > 1 and line in notes:
                    problems.append(
                        f'{mod}.{name}: one comment for {", ".join(names)} (line {line}): one parameter per line'
                    )
            # the line `) -> T:` ends on: its comment is the return's, whatever parameter (`*args` and `**kw` too) is
            # written on it, and on a one-line signature as well
            end = fn.returns.end_lineno if fn.returns is not None else None
            on_end = [p.arg for p in params + [a.vararg, a.kwarg] if p is not None and p.lineno == end]
            if on_end and end in notes:
                last = on_end[-1]
                problems.append(
                    f'{mod}.{name}: the comment on the line that closes the signature (line {end}) documents the return, '
                    f'not {last}: give {last} a line of its own'
                )
            for p in params:
                if p.lineno not in notes:
                    missing.append(f'{mod}.{name}({p.arg})')
    return problems, missing


if __name__ == '__main__':
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    pkg = Path(args[0] if args else Path(__file__).parent.parent / 'building_metric')
    problems, missing = check(pkg)
    print('\n'.join(problems))
    if '--missing' in sys.argv:
        print('\n'.join(missing))
    print(f'{pkg.name}: {len(problems)} docment problems; {len(missing)} parameters without a doc')
    sys.exit(1 if problems else 0)
