"""The house rule of building_metric's imports (ARCHITECTURE.md, "Floors"): no cycle, no private name imported from another
module, and no module importing one from a higher floor. Imports inside functions count too. Exit code 1 on a breach.

Usage: python tools/check_imports.py [PACKAGE_DIR]"""

import ast, sys
from pathlib import Path

FLOORS = {  # package or top-level module -> floor: one floor per package, no exceptions within one
    'core': 0,
    'config': 1,
    'data': 2,
    'weights': 2,
    'geo': 2,
    'checkpoint': 2,
    'retrieval': 3,  # neighbours (the one exact top-k, the faiss kinds), metrics, calibration: what all above share
    'features': 3,
    'callbacks': 3,
    'tracking': 3,
    'batch_size': 3,
    'optim': 3,
    'run': 3,
    'distributed': 3,
    'augment': 4,
    'metric': 4,
    'segmentation': 4,
    'mesh': 4,
    'evaluation': 5,
    'search': 5,
    'jobs': 6,
    'train': 6,
    'hpo': 6,
    'deploy': 6,
    'cli': 7,
    'all': 7,
    'demo': 7,
}


def modules(pkg: Path) -> dict:
    out = {}
    for f in pkg.rglob('*.py'):
        if f.name == '_modidx.py':
            continue
        parts = list(f.relative_to(pkg.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        out['.'.join(parts)] = f
    return out


def imports(name: str, f: Path, mods: dict, root: str):
    "(target module, imported name or None) for every import of the package in `f`."
    is_pkg = f.name == '__init__.py'
    for node in ast.walk(ast.parse(f.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split('.') if is_pkg else name.split('.')[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = '.'.join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ''
            if not target.startswith(root):
                continue
            for a in node.names:
                full = f"{target}.{a.name}"
                yield (full, None) if full in mods else (target, a.name)
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in mods:
                    yield a.name, None


def floor(name: str, root: str):
    "The floor of a module: its package's, or its own at the top of the library."
    return FLOORS.get(name[len(root) + 1 :].split('.')[0])


def check(pkg: Path) -> list[str]:
    root, mods = pkg.name, modules(pkg)
    edges = {m: set() for m in mods}
    problems = [f"FLOORS lists {k}: a floor is a package's, not one module's" for k in FLOORS if '.' in k]
    for m, f in sorted(mods.items()):
        if m != root and floor(m, root) is None:
            problems.append(f"{m} has no floor: add it to FLOORS in tools/check_imports.py")
        for t, nm in imports(m, f, mods, root):
            if t == m or t == root or t not in mods:
                continue
            edges[m].add(t)
            if nm and nm.startswith('_') and not nm.startswith('__'):
                problems.append(f"{m} imports the private {nm} from {t}")
            fm, ft = floor(m, root), floor(t, root)
            if fm is not None and ft is not None and ft > fm:
                problems.append(f"{m} (floor {fm}) imports {t} (floor {ft})")
    state, stack = {}, []

    def dfs(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(edges[u]):
            if state.get(v) == 1:
                problems.append("cycle: " + " -> ".join(stack[stack.index(v) :] + [v]))
            elif not state.get(v):
                dfs(v)
        stack.pop()
        state[u] = 2

    for m in sorted(mods):
        if not state.get(m):
            dfs(m)
    return problems


if __name__ == '__main__':
    pkg = Path(sys.argv[1] if len(sys.argv) > 1 else 'building_metric')
    problems = check(pkg)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(
        f"{pkg.name}: {len(modules(pkg))} modules on {len(set(FLOORS.values()))} floors, no cycle, no private name across modules, no import from a higher floor"
    )
