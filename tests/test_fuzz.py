"""The front door, fuzzed (Hypothesis): settings files and `key=value` overrides, CSV manifests, geo metadata files and
image bytes. Whatever comes in either works or is one `BuildingMetricError` line (exit code 2 from a console script);
no other exception escapes. Example counts are modest here; `make test-slow` runs the `slow` profile (conftest.py)."""

import io, os, shutil, string, tempfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import assume, given, strategies as st
from PIL import Image

from building_metric.cli import COMMANDS
from building_metric.config import run_script
from building_metric.core import BuildingMetricError
from building_metric.data.index import BuildingIndex, check_image, load_image

# -- settings ---------------------------------------------------------------------------------------------------------
yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda v: (
        st.lists(v, max_size=3)
        | st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=6), v, max_size=3)
    ),
    max_leaves=6,
)
SCRIPTS = ['train', 'eval', 'extract', 'index', 'search', 'seg-train', 'seg-infer', 'hpo', 'pair-train', 'demo']


def parse_only(cmd: str, argv: list[str]) -> tuple[int, str]:
    "The console script's front door (parse and check the settings, no job): its exit code and stderr."
    s, err, code = COMMANDS[cmd], io.StringIO(), 0
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        try:
            run_script(s.prog, lambda: s.parse(argv), lambda cfg: {})
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


def one_line(code: int, err: str, prog: str) -> bool:
    lines = [l for l in err.splitlines() if l.strip()]
    return code == 0 or (code == 2 and len(lines) == 1 and lines[0].startswith(f"{prog}: error: "))


def field_names(cmd):
    return [f for f in COMMANDS[cmd].cls.__dataclass_fields__]


@given(cmd=st.sampled_from(SCRIPTS), data=st.data())
def test_any_override_is_a_setting_or_one_line(cmd, data):
    key = data.draw(st.sampled_from(field_names(cmd)) | st.text(string.ascii_letters + '._', min_size=1, max_size=10))
    text = data.draw(
        st.text(max_size=20) | yaml_values.map(lambda v: yaml.safe_dump(v, default_flow_style=True).strip())
    )
    assume('\n' not in text and not text.startswith('-'))
    code, err = parse_only(cmd, [f"{key}={text}"])
    assert one_line(code, err, COMMANDS[cmd].prog), err


@given(cmd=st.sampled_from(SCRIPTS), data=st.data())
def test_any_flag_value_is_a_setting_or_one_line(cmd, data):
    key = data.draw(st.sampled_from(field_names(cmd)))
    text = data.draw(st.text(max_size=20))
    assume(not text.startswith('-') and '\x00' not in text)
    code, err = parse_only(cmd, [f"--{key}", text])
    assert one_line(code, err, COMMANDS[cmd].prog), err


@given(cmd=st.sampled_from(SCRIPTS), data=st.data())
def test_any_yaml_file_is_settings_or_one_line(cmd, data):
    names = field_names(cmd)
    doc = data.draw(
        st.dictionaries(
            st.sampled_from(names) | st.text(string.ascii_lowercase, min_size=1, max_size=8), yaml_values, max_size=4
        )
        | yaml_values
        | st.text(max_size=40).map(lambda t: ('raw', t))
    )
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / 'c.yaml'
        f.write_text(doc[1] if isinstance(doc, tuple) else yaml.safe_dump(doc))
        code, err = parse_only(cmd, ['--config', str(f)])
    assert one_line(code, err, COMMANDS[cmd].prog), err


# -- CSV manifests ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope='module')
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp('fuzz_images')
    for i in range(4):
        Image.new('RGB', (24, 16), (60 * i, 20, 200)).save(d / f'im{i}.jpg')
    (d / 'broken.jpg').write_bytes(b'\xff\xd8\xff\xe0 not a jpeg')
    return d


cells = st.sampled_from(
    [
        '',
        ' ',
        'a',
        'B',
        'im0.jpg',
        'im1.jpg',
        'im2.jpg',
        'im3.jpg',
        'broken.jpg',
        'nope.jpg',
        '1.5',
        '-91',
        '200',
        'nan',
        'inf',
        'train',
        'val',
        'test',
        'holdout',
        'x,y',
        '"q"',
        'é',
    ]
)


@given(
    cols=st.lists(
        st.sampled_from(['path', 'label', 'group', 'lat', 'lon', 'split', 'extra']), min_size=1, max_size=7, unique=True
    ),
    rows=st.integers(0, 8),
    data=st.data(),
)
def test_any_manifest_is_an_index_or_one_line(images, cols, rows, data):
    df = pd.DataFrame({c: data.draw(st.lists(cells, min_size=rows, max_size=rows)) for c in cols})
    with tempfile.TemporaryDirectory() as d:
        csv = Path(d) / 'm.csv'
        df.to_csv(csv, index=False)
        try:
            ix = BuildingIndex.from_csv(csv, root=images, n_workers=0, progress=False)
        except BuildingMetricError:
            return
        for r in ix.df.itertuples():
            if r.status == 'ok':
                assert (
                    r.label
                    and r.path
                    and (np.isnan(r.lat) or -90 <= r.lat <= 90)
                    and (np.isnan(r.lon) or -180 <= r.lon <= 180)
                ), r
            else:
                assert r.reason, r
        try:
            sp = ix.split(by='image', seed=0)
        except BuildingMetricError:
            return
        back = BuildingIndex.load(sp.save(Path(d) / 'index.csv'))  # (paths relative to the saved CSV now)
        pd.testing.assert_frame_equal(back.df.drop(columns='path'), sp.df.drop(columns='path'))
        assert [os.path.abspath(back.root / p) for p in back.df.path] == [
            os.path.abspath(sp.root / p) for p in sp.df.path
        ]


# -- geo metadata -----------------------------------------------------------------------------------------------------------
line = st.one_of(
    st.just('d 001 0000 0000'),
    st.builds(
        lambda a, b: f"c {a} {b}",
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5)),
    ),
    st.text(max_size=20),
    st.just('d 001 0000'),
    st.just('c 45.5'),
)


@given(lines=st.lists(line, max_size=4), missing=st.booleans())
def test_any_geo_metadata_is_a_row_or_a_reason(images, lines, missing):
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(images / 'im0.jpg', Path(d) / '001_0000_0000_0.jpg')
        shutil.copy(images / 'im1.jpg', Path(d) / '001_0001_0000_0.jpg')
        (Path(d) / '001_0001_0000_0.txt').write_text('d 001 0001 0000\nc 45.5 7.5\n')
        if not missing:
            (Path(d) / '001_0000_0000_0.txt').write_text('\n'.join(lines))
        try:
            ix = BuildingIndex.from_geo(d, n_workers=0, progress=False)
        except BuildingMetricError:
            return
        r = ix.df.set_index('path').loc['001_0000_0000_0.jpg']
        if r.status == 'ok':
            assert -90 <= r.lat <= 90 and -180 <= r.lon <= 180 and np.isfinite([r.lat, r.lon]).all()
        else:
            assert r.reason


# -- image bytes --------------------------------------------------------------------------------------------------------------
MAGIC = [
    b'\xff\xd8\xff\xe0',
    b'\x89PNG\r\n\x1a\n',
    b'GIF89a',
    b'BM',
    b'RIFF\x00\x00\x00\x00WEBPVP8 ',
    b'II*\x00',
    b'MM\x00*',
]


def checked(path: Path):
    "check_image never raises; what it keeps, load_image opens; what it skips has a reason."
    r = check_image(path)
    assert r['status'] in ('ok', 'skipped')
    if r['status'] == 'ok':
        assert load_image(path).mode == 'RGB'
    else:
        assert r['reason']
        with pytest.raises(BuildingMetricError):
            load_image(path)


@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=300))
def test_random_bytes_behind_a_magic_number(magic, body):
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / 'x.img'
        f.write_bytes(magic + body)
        checked(f)


@pytest.fixture(scope='module')
def real_files(tmp_path_factory):
    d = tmp_path_factory.mktemp('fuzz_real')
    from sklearn.datasets import load_sample_image

    im = Image.fromarray(load_sample_image('china.jpg')).resize((96, 64))
    im.save(d / 'a.jpg', quality=80)
    im.save(d / 'a.png')
    im.save(d / 'a.webp')
    im.convert('P').save(d / 'a.gif')
    return {p.suffix: p.read_bytes() for p in d.iterdir()}


@given(data=st.data())
def test_real_images_truncated_anywhere(real_files, data):
    ext = data.draw(st.sampled_from(sorted(real_files)))
    raw = real_files[ext]
    cut = data.draw(st.integers(0, len(raw)))
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / f'x{ext}'
        f.write_bytes(raw[:cut])
        checked(f)
