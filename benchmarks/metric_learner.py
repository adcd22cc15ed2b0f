"""metric_learner vs a minimal hand-written PyTorch loop doing the same training steps.

Same head (FusionHead size 0), loss (ProxyAnchor, proxies at 100x), optimiser (AdamW), batch size
256, 20,000 rows of 2,816 cached float16 features held in RAM. The Learner is fed by
FeatureCache.dataloaders; the loop by slicing a shuffled in-RAM tensor. One epoch each, alternating,
median of N runs; the ratio is Learner / loop. Run: python benchmarks/metric_learner.py [runs]
"""

import statistics, sys, tempfile, time
from pathlib import Path

import numpy as np
import torch

from building_metric.core import seed_everything
from building_metric.features.cache import FeatureCache
from building_metric.metric.heads import FusionHead
from building_metric.metric.learner import metric_learner
from building_metric.metric.losses import create_loss

sys.path.insert(0, str(Path(__file__).parent))
from random_cache import write_random_cache


def main(runs: int = 5, bs: int = 256):
    with tempfile.TemporaryDirectory() as d:
        write_random_cache(Path(d) / 'c.h5')
        cache = FeatureCache(Path(d) / 'c.h5')
        n_cls, dims = len(cache.label_names), cache.dims()
        dls = cache.dataloaders(bs=bs, valid=None, in_ram=True, device='cpu')
        seed_everything(0)
        learn = metric_learner(dls, FusionHead(dims, size=0), 'proxy_anchor', n_classes=n_cls, metrics=[])
        X, Y = torch.from_numpy(cache.features()), torch.from_numpy(cache.labels.astype(np.int64))
        seed_everything(0)
        head, loss = FusionHead(dims, size=0), create_loss('proxy_anchor', n_classes=n_cls, emb_dim=512)
        opt = torch.optim.AdamW(loss.param_groups(head, 1e-3), weight_decay=1e-4)

        def loop_epoch():
            head.train()
            loss.train()
            perm = torch.randperm(len(X))
            for s in range(0, len(X) - bs + 1, bs):
                i = perm[s : s + bs]
                l = loss(head(X[i].float()), Y[i])
                opt.zero_grad()
                l.backward()
                opt.step()

        def learner_epoch():
            with learn.no_bar(), learn.no_logging():
                learn.fit(1, 1e-3)

        loop_epoch()
        learner_epoch()  # warm-up
        t_loop, t_learn = [], []
        for _ in range(runs):
            t = time.perf_counter()
            loop_epoch()
            t_loop.append(time.perf_counter() - t)
            t = time.perf_counter()
            learner_epoch()
            t_learn.append(time.perf_counter() - t)
        ml, mb = statistics.median(t_learn), statistics.median(t_loop)
        print(f"one epoch, {len(X):,} x {X.shape[1]:,} features, batch {bs}, median of {runs} alternating runs:")
        print(f"   hand-written loop  {mb:.2f} s   (runs: {', '.join(f'{t:.2f}' for t in t_loop)})")
        print(f"   metric_learner     {ml:.2f} s   (runs: {', '.join(f'{t:.2f}' for t in t_learn)})")
        print(f"   metric_learner / loop: {ml / mb:.2f}x")
        cache.close()


if __name__ == '__main__':
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
