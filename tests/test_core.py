"One writer at a time: a second `bm-*` writing the same run folder, feature cache or gallery gets one line naming the holder and exit 2; the lock of a writer killed with `kill -9` is taken over."

import signal, subprocess, sys, textwrap

import pytest

from building_metric.data.synth import write_synthetic

from conftest import ENV, one_line_error, run


def hold(target, what, folder):
    "A process that takes the writer lock of `target` and waits (what a long bm-* run does while it writes)."
    code = textwrap.dedent(f"""
        import time
        from building_metric.core import WriterLock
        lock = WriterLock({str(target)!r}, {what!r}, folder={folder}).acquire()   # (kept: a lock object that is collected lets go)
        print('held', flush=True); time.sleep(300)""")
    p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout.readline().strip() == 'held'
    return p


@pytest.fixture(scope='module')
def photos(tmp_path_factory):
    return write_synthetic(
        tmp_path_factory.mktemp('rel') / 'photos', 'folders', n_identities=4, views=3, size=48, seed=0
    )


def test_second_writer_of_a_run_folder_is_refused(photos, tmp_path):
    p = hold(tmp_path / 'run', 'run folder', True)
    try:
        for script in ('bm-train', 'bm-seg-train'):
            extra = ('--data', photos, '--resnet', '1') if script == 'bm-train' else ()
            r = run(script, *extra, '--out', tmp_path / 'run', '--tiny', '1', '--epochs', '1')
            assert one_line_error(r, script) and f"is being written by process {p.pid}" in r.stderr, r.stderr
    finally:
        p.kill()
        p.wait()


def test_second_writer_of_a_cache_is_refused_then_a_killed_writer_is_taken_over(photos, tmp_path):
    out = tmp_path / 'features.h5'
    args = (
        '--data',
        photos,
        '--out',
        out,
        '--extractors',
        'resnet',
        '--tiny',
        '1',
        '--workers',
        '0',
        '--split',
        'class',
    )
    p = hold(out, 'feature cache', False)
    r = run('bm-extract', *args)
    assert (
        one_line_error(r, 'bm-extract')
        and f"the feature cache {str(out)!r} is being written by process {p.pid}" in r.stderr
    ), r.stderr
    assert not out.exists()  # nothing written by the refused writer
    p.send_signal(signal.SIGKILL)
    p.wait()  # the holder dies without releasing it
    r = run('bm-extract', *args)
    assert r.returncode == 0, r.stderr
    assert f"taking over the lock of feature cache {str(out)!r} from process {p.pid}" in r.stderr and out.is_file()


def test_second_writer_of_a_gallery_is_refused(tmp_path):
    p = hold(tmp_path / 'gallery', 'gallery', True)
    try:
        (tmp_path / 'run').mkdir()
        r = run(
            'bm-index',
            '--run',
            tmp_path / 'run',
            '--gallery',
            tmp_path,
            '--out',
            tmp_path / 'gallery',
            '--add',
            tmp_path,
        )
        assert (
            one_line_error(r, 'bm-index')
            and f"the gallery {str(tmp_path / 'gallery')!r} is being written by process {p.pid}" in r.stderr
        ), r.stderr
    finally:
        p.kill()
        p.wait()
