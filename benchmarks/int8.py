"""Dynamic int8 quantisation against the float model, in one run: size, CPU latency and retrieval quality.

1. The demo's fusion head (`bm-demo`: EfficientNet-Lite0 features of synthetic buildings, when its weights are installed),
   four ways: float and int8 in torch (`quantize_int8`), float and int8 in onnxruntime (`export_onnx`, `quantize_onnx`).
   MAP@R of unseen buildings and of held-out views of seen ones, the smallest cosine to the float embeddings,
   serialised size, and the median latency of a batch of 1 and of 256 feature rows.
2. An end-to-end `Embedder` (EfficientNet-Lite0 + projection head): only its Linear layers quantise, so size and
   latency barely move; measured on a batch of 16 images of 224 x 224.

Usage: python benchmarks/int8.py [--epochs 30] [--repeats 50]
"""

import argparse, os, statistics, tempfile, time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F


def median_ms(fn, x, repeats: int) -> float:
    fn(x)  # warm up
    t = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        t.append(time.perf_counter() - t0)
    return statistics.median(t) * 1000


def markdown(t: pd.DataFrame, digits: int = 3) -> str:
    "A DataFrame as a Markdown table (no extra package)."
    cols = [t.index.name or ''] + [str(c) for c in t.columns]
    lines = ['| ' + ' | '.join(cols) + ' |', '|' + '---|' * len(cols)]
    lines += [
        '| ' + ' | '.join([str(i)] + [f"{v:.{digits}f}" for v in r]) + ' |' for i, r in zip(t.index, t.to_numpy())
    ]
    return '\n'.join(lines)


def onnx_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in p.parent.glob(p.name + '*'))


def main(epochs: int = 30, repeats: int = 50):
    os.environ.setdefault("BUILDING_METRIC_PROGRESS", "0")
    import onnxruntime as ort
    from building_metric.evaluation.report import demo
    from building_metric.retrieval.metrics import retrieval_metrics
    from building_metric.features.cache import FeatureCache, FeatureRows
    from building_metric.metric.export import export_onnx, model_bytes, quantize_int8, quantize_onnx
    from building_metric.metric.heads import Embedder, load_head
    from building_metric.weights import packaged_weights

    tmp = Path(tempfile.mkdtemp())
    m = demo(tmp / 'demo', epochs=epochs, log=lambda s: None)
    head, meta = load_head(tmp / 'demo' / 'run' / 'models' / 'best.pth')
    with FeatureCache(tmp / 'demo' / 'features.h5') as c:
        x, y = FeatureRows(c, meta['extractors'], np.arange(len(c)), in_ram=True).batch(np.arange(len(c)))
        split = c.split_of
    print(
        f"fusion head on {', '.join(meta['extractors'])} features ({x.shape[1]}), {len(x)} photos; demo MAP@R unseen {m['unseen_buildings']['map_at_r']:.3f}"
    )
    q8 = quantize_int8(head)
    export_onnx(head, tmp / 'head.onnx')
    p8 = quantize_onnx(tmp / 'head.onnx')
    sess = {
        n: ort.InferenceSession(str(p), providers=['CPUExecutionProvider'])
        for n, p in (('f', tmp / 'head.onnx'), ('q', p8))
    }
    runs = {
        'float, torch': lambda b: head(b),
        'int8, torch': lambda b: q8(b),
        'float, onnxruntime': lambda b: torch.from_numpy(sess['f'].run(None, {'features': b.numpy()})[0]),
        'int8, onnxruntime': lambda b: torch.from_numpy(sess['q'].run(None, {'features': b.numpy()})[0]),
    }
    sizes = {
        'float, torch': model_bytes(head),
        'int8, torch': model_bytes(q8),
        'float, onnxruntime': onnx_bytes(tmp / 'head.onnx'),
        'int8, onnxruntime': onnx_bytes(p8),
    }
    rows, ref = {}, None
    with torch.no_grad():
        for name, fn in runs.items():
            e = F.normalize(fn(x).float(), dim=1)
            ref = e if ref is None else ref
            r = dict(megabytes=sizes[name] / 1e6)
            for part, s in (('unseen', 'test'), ('seen held-out', 'val')):
                r[f'MAP@R {part}'] = retrieval_metrics(e[split == s], y[split == s])['map_at_r']
            r['min cosine to float'] = F.cosine_similarity(e, ref).min().item()
            r['ms, batch 1'] = median_ms(fn, x[:1], repeats)
            r['ms, batch 256'] = median_ms(fn, x[:256], repeats)
            rows[name] = r
    t = pd.DataFrame(rows).T
    base = t.loc['float, torch']
    t['size ratio'] = t.megabytes / base.megabytes
    t['speed-up, batch 256'] = base['ms, batch 256'] / t['ms, batch 256']
    print(markdown(t, 4))
    if packaged_weights('efficientnet_lite0') is not None:
        emb = Embedder('efficientnet_lite0', emb_dim=512, pretrained=True).eval()  # (the packaged weights)
        e8 = quantize_int8(emb)
        imgs = torch.randn(16, 3, 224, 224)
        with torch.no_grad():
            cos = F.cosine_similarity(emb(imgs), e8(imgs)).min().item()
            r = {
                n: dict(megabytes=model_bytes(mm) / 1e6, **{'ms, batch 16': median_ms(mm, imgs, max(5, repeats // 10))})
                for n, mm in (('float', emb), ('int8 (Linear layers)', e8))
            }
        te = pd.DataFrame(r).T
        print(
            f"\nend-to-end Embedder (EfficientNet-Lite0 + projection to 512), smallest cosine int8 to float {cos:.4f}:"
        )
        print(markdown(te, 2))


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--epochs', type=int, default=30)
    ap.add_argument('--repeats', type=int, default=50)
    main(**vars(ap.parse_args()))
