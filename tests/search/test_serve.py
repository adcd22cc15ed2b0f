"""`bm-search --serve 1`: one warm process answers photos sent over HTTP by many clients at once, each answer the
gallery's own (`BuildingGallery.answer` on the same file), refuses bad requests in one line and goes on, and stops
cleanly on SIGTERM."""

import io, json, re, signal, subprocess, time, urllib.error, urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import numpy as np
from PIL import Image

from building_metric.data.synth import write_synthetic
from building_metric.search import BuildingGallery, answer_records

from conftest import run, spawn


def _ask(url, body=None, json_body=None):
    "Status and JSON of one request."
    headers = {'Content-Type': 'image/png'}
    if json_body is not None:
        body, headers = json.dumps(json_body).encode(), {'Content-Type': 'application/json'}
    req = urllib.request.Request(url, data=body, headers=headers, method='POST' if body is not None else 'GET')
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _start(*args):
    "The server in its own process, and its address (read off the line it prints when it listens)."
    p = spawn(
        'bm-search', '--serve', '1', '--port', '0', *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    for line in p.stderr:
        if m := re.search(r' at (http://[^/\s]+:\d+)', line):
            return p, m.group(1)
    raise AssertionError(f"the server did not start: {p.wait()} {p.stdout.read()}")


def test_server_answers_many_clients_as_the_gallery_does_and_survives_bad_requests(tmp_path):
    write_synthetic(tmp_path / 'known', 'folders', n_identities=8, views=4, size=64, seed=0)
    write_synthetic(tmp_path / 'queries', 'folders', n_identities=10, views=4, size=64, seed=1)  # two buildings unknown
    r = run(
        'bm-index',
        '--extractors',
        'vit',
        '--tiny',
        '1',
        '--gallery',
        tmp_path / 'known',
        '--out',
        tmp_path / 'g',
        '--workers',
        '0',
    )
    assert r.returncode == 0, r.stderr
    photos = sorted((tmp_path / 'queries').rglob('*.png'))
    g = BuildingGallery(tmp_path / 'g')
    name = lambda f: f.relative_to(
        tmp_path / 'queries'
    ).as_posix()  # (building/view_000.png: names repeat across folders)
    want = {}
    for f in photos:  # the library's answers, one photo at a time
        t, m, _ = g.answer(f, k=5, workers=0, progress=False)
        want[name(f)] = answer_records(t, m)[0]

    p, url = _start('--gallery', tmp_path / 'g', '--k', '5', '--allow', tmp_path / 'queries')
    try:
        jobs = [photos[i % len(photos)] for i in range(200)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as ex:
            got = list(ex.map(lambda f: _ask(f"{url}/answer?name={quote(name(f))}", f.read_bytes()), jobs))
        seconds = time.perf_counter() - t0
        print(f"200 photos from 8 clients in {seconds:.1f} s: {200 / seconds:.1f} answers/s")
        for f, (status, a) in zip(jobs, got):
            w = want[name(f)]
            assert status == 200 and a['query'] == name(f), (status, a)
            assert a['building'] == w['building'] and a['knn_building'] == w['knn_building']
            assert [x['path'] for x in a['matches']] == [x['path'] for x in w['matches']]
            # float32 sums of one photo's batch either way: equal to within a stated 1e-6
            np.testing.assert_allclose(
                [a['confidence'], a['best_similarity'], a['knn_share']],
                [w['confidence'], w['best_similarity'], w['knn_share']],
                rtol=0,
                atol=1e-6,
            )
            np.testing.assert_allclose(
                [x['similarity'] for x in a['matches']], [x['similarity'] for x in w['matches']], rtol=0, atol=1e-6
            )

        bomb = io.BytesIO()
        Image.new('1', (12000, 12000)).save(bomb, 'PNG')
        outside = sorted((tmp_path / 'known').rglob('*.png'))[0]
        bad = [
            (_ask(f"{url}/answer", b''), 400, 'empty body'),
            (_ask(f"{url}/answer", b'<html>not a photo</html>'), 415, 'not an image'),
            (_ask(f"{url}/answer", bomb.getvalue()), 413, 'too large to decode safely'),
            (_ask(f"{url}/answer", json_body={'path': str(outside)}), 403, 'outside the allowed folder'),
            (
                _ask(
                    f"{url}/answer",
                    json_body={'path': '../known/' + outside.relative_to(tmp_path / 'known').as_posix()},
                ),
                403,
                'outside the allowed folder',
            ),
        ]
        for (status, body), code, says in bad:
            assert status == code and says in body['error'] and '\n' not in body['error'], (status, body)
        status, a = _ask(f"{url}/answer", json_body={'path': name(photos[0])})
        assert status == 200 and a['building'] == want[name(photos[0])]['building']  # a path inside the allowed folder
        status, h = _ask(f"{url}/health")
        assert status == 200 and (h['answered'], h['refused'], h['photos']) == (201, 5, len(g))
    finally:
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert json.loads(out)['answered'] == 201 and 'stopped after 201 answers' in err
