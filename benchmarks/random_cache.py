"""A feature cache in the layout extract_features writes, filled with random features (for benchmarks)."""

from pathlib import Path

import h5py
import numpy as np

import building_metric
from building_metric.features.cache import FORMAT, FORMAT_VERSION


def write_random_cache(path: Path, n: int = 20_000, dims=(2048, 768), n_cls: int = 500, seed: int = 0) -> Path:
    "Write `n` rows of float16 features (one dataset per entry of `dims`), `n_cls` random labels, all in 'train'."
    rng, s = np.random.default_rng(seed), h5py.string_dtype()
    with h5py.File(path, 'w') as f:
        f.attrs.update(
            format=FORMAT,
            format_version=FORMAT_VERSION,
            library_version=building_metric.__version__,
            fingerprint='bench',
            n_rows=n,
        )
        f['rows/path'] = np.array([f"{i}.png" for i in range(n)], dtype=object).astype(s)
        f['rows/label'] = rng.integers(0, n_cls, n).astype(np.int32)
        f['rows/group'] = np.array([''] * n, dtype=object).astype(s)
        f['rows/lat'] = f['rows/lon'] = np.full(n, np.nan)
        f['rows/split'] = np.array(['train'] * n, dtype=object).astype(s)
        f['label_names'] = np.array([str(i) for i in range(n_cls)], dtype=object).astype(s)
        for k, d in enumerate(dims):
            ds = f.create_dataset(
                f'features/f{k}',
                data=rng.standard_normal((n, d)).astype(np.float16),
                chunks=(256, d),
                compression='lzf',
            )
            ds.attrs.update(name=f'f{k}', identity='{}', info='{}')
    return path
