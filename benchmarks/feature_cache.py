"""Feature cache benchmarks; every figure is a ratio measured in this one run.

1. Extraction throughput: `extract_features` (images decoded in DataLoader workers) vs a bare
   `model(x)` loop over pre-made tensors, same backbone (timm resnet50, random weights), same batch size.
2. One training epoch of a head over the cache vs the same epoch that runs the frozen backbone on
   the images for every batch.
3. A head-training epoch fed random batches from the cache on disk, from the cache in RAM, and from
   plain in-RAM tensors (20,000 x 2,816 float16 features, the fusion classifier's size).

Run: python benchmarks/feature_cache.py [n_images]   (n_images for parts 1-2, default 192)
"""

import sys, tempfile, time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from building_metric.core import seed_everything
from building_metric.data.index import BuildingIndex, load_image
from building_metric.data.synth import write_synthetic
from building_metric.features.cache import FeatureCache, extract_features
from building_metric.features.extractors import create_extractor

sys.path.insert(0, str(Path(__file__).parent))
from random_cache import write_random_cache


def timed(f):
    t = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t


def head(d_in, n_cls):
    return nn.Sequential(
        nn.Linear(d_in, 1024), nn.BatchNorm1d(1024), nn.ReLU(), nn.Linear(1024, 512), nn.ReLU(), nn.Linear(512, n_cls)
    )


def train_epoch(model, batches, opt):
    "One epoch of cross-entropy steps over `batches` (an iterable of (x, y)); returns the number of steps."
    n = 0
    for x, y in batches:
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        n += 1
    return n


def part1_2(tmp: Path, n_images: int, bs: int = 32):
    write_synthetic(tmp / 'imgs', 'folders', n_identities=max(2, n_images // 8), views=8, size=128)
    index = BuildingIndex.from_folder(tmp / 'imgs').split(seed=0)
    ext = create_extractor('timm/resnet50', pretrained=False)
    x_all = torch.stack([ext.preprocess(load_image(p)) for p in index.paths()])

    def bare():
        with torch.inference_mode():
            for s in range(0, len(x_all), bs):
                ext(x_all[s : s + bs])

    bare()  # warm-up (first-call allocations)
    _, t_bare = timed(bare)
    _, t_ours = timed(
        lambda: extract_features(index, [ext], tmp / 'r50.h5', bs=bs, num_workers=1, progress=False, knn=0)
    )
    n = len(x_all)
    print(f"1. extraction, timm resnet50 (random weights), {n} images of 128 px -> 224, batch {bs}:")
    print(f"   bare model(x) over pre-made tensors: {n / t_bare:6.1f} images/s")
    print(
        f"   extract_features (decode + resize in a worker, write the cache): {n / t_ours:6.1f} images/s "
        f"= {t_bare / t_ours:.2f}x the bare loop"
    )

    # 2: an epoch of the same head, fed from the cache vs computing the frozen features for every batch
    cache = FeatureCache(tmp / 'r50.h5')
    dls = cache.dataloaders(bs=bs, device='cpu')
    n_cls = len(cache.label_names)
    seed_everything(0)
    m1 = head(2048, n_cls)
    o1 = torch.optim.Adam(m1.parameters())
    train_epoch(m1, dls.train, o1)
    steps, t_cache = timed(lambda: train_epoch(m1, dls.train, o1))
    tr = cache.rows('train')
    xs, ys = x_all[tr], torch.from_numpy(cache.labels[tr].astype(np.int64))

    def from_images():
        perm = torch.randperm(len(tr))

        def batches():
            for s in range(0, len(tr) - bs + 1, bs):
                i = perm[s : s + bs]
                yield ext(xs[i]), ys[i]

        return train_epoch(m1, batches(), o1)

    _, t_img = timed(from_images)
    print(
        f"2. one head-training epoch ({steps} batches of {bs}): from the cache {t_cache * 1000:.0f} ms, "
        f"running the frozen resnet50 on the images {t_img:.1f} s: the cache is {t_img / t_cache:.0f}x faster"
    )
    cache.close()


def part3(tmp: Path, n: int = 20_000, dims=(2048, 768), bs: int = 256, epochs: int = 2):
    n_cls = 500
    path = write_random_cache(tmp / 'big.h5', n, dims, n_cls)
    cache = FeatureCache(path)
    names = cache.extractors
    x_plain = torch.from_numpy(cache.features(names))
    y_plain = torch.from_numpy(cache.labels.astype(np.int64))

    def plain():
        perm = torch.randperm(n)
        return ((x_plain[perm[s : s + bs]], y_plain[perm[s : s + bs]]) for s in range(0, n - bs + 1, bs))

    ram = cache.dataloaders(names, bs=bs, valid=None, in_ram=True, device='cpu').train
    disk = cache.dataloaders(names, bs=bs, valid=None, in_ram=False, device='cpu').train
    res = {}
    for name, src in [('plain tensors', plain), ('cache in RAM', lambda: ram), ('cache on disk', lambda: disk)]:
        seed_everything(0)
        m = head(sum(dims), n_cls)
        o = torch.optim.Adam(m.parameters())
        train_epoch(m, src(), o)  # warm-up epoch
        res[name] = min(timed(lambda: train_epoch(m, src(), o))[1] for _ in range(epochs))
    reads = min(timed(lambda: [b for b in disk])[1] for _ in range(2))
    print(f"3. head-training epoch over {n:,} x {sum(dims):,} float16 features, batch {bs} (best of {epochs}):")
    for k, v in res.items():
        print(f"   {k:14s} {v:6.2f} s")
    print(
        f"   cache in RAM / plain tensors: {res['cache in RAM'] / res['plain tensors']:.2f}x;  "
        f"cache on disk / cache in RAM: {res['cache on disk'] / res['cache in RAM']:.2f}x  "
        f"(reading the disk epoch alone: {reads:.2f} s)"
    )
    cache.close()


if __name__ == '__main__':
    torch.manual_seed(0)
    n_images = int(sys.argv[1]) if len(sys.argv) > 1 else 192
    with tempfile.TemporaryDirectory() as d:
        part1_2(Path(d), n_images)
        part3(Path(d))
