"""Validating a folder of photographs: BuildingIndex vs a plain loop that decodes every image.

Baseline: one process opening each file with PIL and decoding it fully to RGB (what a hand-written
check does). Measured in one run on the same files:
  - BuildingIndex.from_folder(n_workers=0): the 1/8-scale JPEG decode, one process;
  - BuildingIndex.from_folder(n_workers=N): the same in N processes.
Both must find the same broken files as the baseline. Run: python benchmarks/validate_index.py [n_images] [side]
"""

import sys, tempfile, time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from building_metric.data.index import BuildingIndex
from building_metric.data.synth import FacadeGenerator


def make_photos(root: Path, n: int, side: int):
    "n JPEG 'photographs' of side x 3/4 side pixels (synthetic facades upscaled, with sensor noise), 1 in 50 truncated."
    gen, rng = FacadeGenerator(n_identities=max(1, n // 10), views=10, size=128), np.random.default_rng(0)
    for k in range(n):
        im = gen[k // 10 % len(gen), k % 10][0].resize((side, side * 3 // 4), Image.BICUBIC)
        a = np.asarray(im, np.int16) + rng.integers(-6, 7, (side * 3 // 4, side, 3), dtype=np.int16)
        d = root / f'bldg_{k // 10:04d}'
        d.mkdir(exist_ok=True)
        Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(d / f'{k:05d}.jpg', quality=90)
        if k % 50 == 7:
            (d / f'{k:05d}.jpg').write_bytes((d / f'{k:05d}.jpg').read_bytes()[:20_000])


def baseline(root: Path) -> set:
    bad = set()
    for p in sorted(root.rglob('*.jpg')):
        try:
            with Image.open(p) as im:
                ImageOps.exif_transpose(im).convert('RGB')
        except OSError:
            bad.add(p.relative_to(root).as_posix())
    return bad


def timed(f):
    t = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t


if __name__ == '__main__':
    n, side = (int(sys.argv[1]) if len(sys.argv) > 1 else 300), (int(sys.argv[2]) if len(sys.argv) > 2 else 2000)
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        make_photos(root, n, side)
        bad0, t0 = timed(lambda: baseline(root))
        i1, t1 = timed(lambda: BuildingIndex.from_folder(root, n_workers=0, progress=False))
        i2, t2 = timed(lambda: BuildingIndex.from_folder(root, n_workers=2, progress=False))
        assert set(i1.skipped.path) == set(i2.skipped.path) == bad0, 'the validators disagree'
        print(f"{n} JPEGs of {side}x{side * 3 // 4}, {len(bad0)} truncated (all three find the same ones)")
        print(f"baseline, full decode, 1 process: {t0:6.2f} s  1.00x")
        print(f"BuildingIndex, 1 process:         {t1:6.2f} s  {t0 / t1:.2f}x faster")
        print(f"BuildingIndex, 2 processes:       {t2:6.2f} s  {t0 / t2:.2f}x faster")
