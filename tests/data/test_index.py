"""Validation at scale: 10,000 files checked in parallel with a progress bar, nothing lost."""

import io
import shutil

import numpy as np
from PIL import Image

from building_metric.data.index import BuildingIndex


def _tree(root, n_classes=100, per_class=100):
    "n_classes x per_class tiny PNGs, each written once and copied (writing is not what is tested)."
    rng = np.random.default_rng(0)
    src = root / 'src.png'
    Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(src)
    for c in range(n_classes):
        d = root / 'data' / f'class_{c:03d}'
        d.mkdir(parents=True)
        for i in range(per_class):
            shutil.copyfile(src, d / f'{i:03d}.png')
    return root / 'data'


def test_ten_thousand_files_in_parallel(tmp_path, capsys):
    data = _tree(tmp_path)
    buf = io.BytesIO()
    Image.new('RGB', (64, 64)).save(buf, 'JPEG')
    (data / 'class_007' / '050.png').write_bytes(buf.getvalue()[:200])  # truncated
    (data / 'class_042' / '010.png').write_bytes(b'')  # empty
    (data / 'class_099' / 'notes.png').write_text('not an image')  # 10,001st file

    idx = BuildingIndex.from_folder(data, n_workers=2, progress=True)  # a bar even into a pipe, when asked for
    out = capsys.readouterr()

    assert len(idx.df) == 10_001  # every file seen
    assert len(idx) + len(idx.skipped) == len(idx.df)
    assert len(idx) == 9_998
    assert sorted(idx.skipped.path) == ['class_007/050.png', 'class_042/010.png', 'class_099/notes.png']
    assert (idx.items.width == 32).all() and (idx.items.height == 24).all()
    assert '10001' in (out.out + out.err).replace(',', '')  # the progress bar counted them


def test_parallel_equals_serial(tmp_path):
    data = _tree(tmp_path, n_classes=10, per_class=40)
    (data / 'class_003' / '007.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    serial = BuildingIndex.from_folder(data, n_workers=0)
    parallel = BuildingIndex.from_folder(data, n_workers=2)
    assert serial.df.equals(parallel.df)
    assert serial.skipped.path.tolist() == ['class_003/007.png']
