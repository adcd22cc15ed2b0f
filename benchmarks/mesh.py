"""How fast the mesh pipeline runs on a CPU: per-face features and clusters of a 1,000,000-face tile (faces per second,
peak memory), and training the face transformer (training faces per second), in one run.

The tile is a 707 x 707 heightfield grid (999,698 triangles) with random heights, one label per face: the size of a
SUM tile. Peak memory is the peak of Python's allocations (tracemalloc, which numpy reports to) during each step.
Run: python benchmarks/mesh.py [--faces 1000000] [--epochs 3]"""

import argparse, tempfile, time, tracemalloc
from pathlib import Path

import numpy as np

from building_metric.config import MeshTrainConfig
from building_metric.mesh.features import cluster_samples, face_features
from building_metric.mesh.io import Mesh
from building_metric.mesh.synth import write_synthetic_meshes
from building_metric.jobs.mesh_train import mesh_train


def tile(faces: int, seed: int = 0) -> Mesh:
    "A heightfield grid of about `faces` triangles."
    n = int(np.sqrt(faces / 2))
    rng = np.random.default_rng(seed)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing='ij')
    v = np.stack([i.ravel(), j.ravel(), rng.random((n + 1) ** 2) * 3], 1).astype(float)
    a = (np.arange(n)[:, None] * (n + 1) + np.arange(n)[None]).ravel()
    f = np.concatenate([np.stack([a, a + n + 1, a + n + 2], 1), np.stack([a, a + n + 2, a + 1], 1)])
    return Mesh(v, f, labels=rng.integers(0, 6, len(f)))


def measured(fn):
    "Result, seconds and peak traced memory (MB) of `fn()`."
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    s = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, s, peak


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--faces', type=int, default=1_000_000)
    ap.add_argument('--epochs', type=int, default=3)
    a = ap.parse_args()
    m = tile(a.faces)
    mesh_mb = (m.vertices.nbytes + m.faces.nbytes + m.labels.nbytes) / 2**20
    x, s1, p1 = measured(lambda: face_features(m))
    samples, s2, p2 = measured(lambda: cluster_samples(m, 256, 16, features=x))
    print(f"## A {m.n_faces:,}-face tile (the mesh itself: {mesh_mb:.0f} MB)\n")
    print("| step | seconds | faces / s | peak memory (MB) |\n|---|---|---|---|")
    print(f"| per-face features (18 channels) | {s1:.1f} | {m.n_faces / s1:,.0f} | {p1:.0f} |")
    print(
        f"| clusters of 256 faces, 16 to a sample ({len(samples)} samples) | {s2:.1f} | {m.n_faces / s2:,.0f} | {p2:.0f} |"
    )
    print(f"| both | {s1 + s2:.1f} | {m.n_faces / (s1 + s2):,.0f} | {max(p1, p2):.0f} |\n")
    with tempfile.TemporaryDirectory() as d:
        write_synthetic_meshes(Path(d) / 'data', n=(12, 4, 4))
        print(f"## Training on 12 generated buildings, {a.epochs} epochs (dim 64, 2 blocks, F 256, N 16, batch 4)\n")
        print("| model | training faces / s |\n|---|---|")
        for name, t in (('geometry', 0), ('texture + geometry (16 texels)', 16)):
            r = mesh_train(
                MeshTrainConfig(
                    data=str(Path(d) / 'data'), out=str(Path(d) / f'run{t}'), epochs=a.epochs, texels=t, log='none'
                ),
                log=lambda s: None,
            )
            print(f"| {name} | {r['train_faces_per_second']:,.0f} |")
