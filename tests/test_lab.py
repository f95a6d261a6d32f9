"""The widgets notebook in a real JupyterLab, driven by Playwright (from PyPI) in Debian's Chromium (never a downloaded
browser): start JupyterLab on 127.0.0.1, open nbs/12_widgets.ipynb, run all cells, and check that the widgets rendered
— the embedding map (static image and offline Leaflet map), the UMAP scatter with hover titles, a training monitor
that was redrawn while `fit` ran and whose per-modality validation curves grew during the run, the probe table, and
the encoder-comparison explorer (two maps, a difference map, two probe tables) — with no error output. Then it
drives the comparison explorer as a reader would: a new resolution must redraw both maps and the difference map at
that resolution, and the difference toggle must redraw the difference map alone. Screenshots go to test-artifacts/lab/ (gitignored)
and must not be blank."""
import json, os, shutil, time
from pathlib import Path
import pytest
from conftest import needs_chromium, jupyter_lab, image_std, KERNEL_READY

ROOT = Path(__file__).resolve().parents[1]
NB = ROOT / 'nbs' / '12_widgets.ipynb'
ARTIFACTS = ROOT / 'test-artifacts' / 'lab'  # gitignored
RUN_ALL_TIMEOUT_MS = 300_000

pytestmark = needs_chromium

def _name(attempt:int) -> str: return NB.name if attempt == 1 else f'{NB.stem}-retry.ipynb'

@pytest.fixture(scope='module')
def lab(tmp_path_factory):
    d = tmp_path_factory.mktemp('lab')
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    nbdir = d / 'notebooks'
    nbdir.mkdir()
    for attempt in (1, 2): shutil.copy(NB, nbdir / _name(attempt))  # a fresh copy per attempt: no stale outputs
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}  # the notebook runs at its real (reader's) size
    with jupyter_lab(nbdir, d, env, log_to=ARTIFACTS / 'jupyter.log') as url: yield url

# records every value the training monitor's render counter and validation-point count take while the notebook runs
RECORD_RENDERS = """() => {
  window.__renders = new Set(); window.__val = new Set();
  const seen = () => document.querySelectorAll('.lt-monitor').forEach(e => { window.__renders.add(e.dataset.renders); window.__val.add(e.dataset.valPoints); });
  new MutationObserver(seen).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
}"""

RESET_SESSIONS = """async () => {
  const xsrf = (document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || '';
  const h = {'X-XSRFToken': decodeURIComponent(xsrf)};
  for (const s of await (await fetch('/api/sessions')).json()) await fetch('/api/sessions/' + s.id, {method: 'DELETE', headers: h});
  for (const k of await (await fetch('/api/kernels')).json()) await fetch('/api/kernels/' + k.id, {method: 'DELETE', headers: h});
}"""

# done when every code cell shows an execution count, or as soon as an error output appears (run-all stops there)
RUN_DONE = """() => {
  if ([...document.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')].some(e => e.textContent.includes('Traceback'))) return 'error';
  const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].map(e => e.textContent);
  return p.length > 0 && p.every(t => /\\[\\d+\\]/.test(t)) ? 'done' : false;
}"""

def _run_notebook(page, url, name):
    page.goto(f'{url}/lab/tree/{name}')
    page.wait_for_selector('.jp-NotebookPanel .jp-Cell', timeout=60_000)
    page.wait_for_function(KERNEL_READY, timeout=90_000)
    page.evaluate(RECORD_RENDERS)
    t0 = time.monotonic()
    # fire and poll: awaiting the command's promise once hung with no cell started
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function("() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')].some(e => /\\[[*\\d]+\\]/.test(e.textContent))",
                           timeout=60_000)
    page.wait_for_function(RUN_DONE, timeout=RUN_ALL_TIMEOUT_MS, polling=500)
    return time.monotonic() - t0

def _check(page, seconds):
    errors = [t for t in page.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
              if 'Traceback' in t or 'Error' in t]
    assert not errors, f'error output in the notebook: {errors[0][:2000]}'
    prompts = page.locator('.jp-InputArea-prompt').all_inner_texts()
    assert not [p for p in prompts if '*' in p], 'cells still running or queued'
    assert page.locator('.jupyter-widgets').count() > 0
    # the training monitor was redrawn while fit ran, and shows the whole run at the end
    renders = {int(r) for r in page.evaluate('() => [...window.__renders]') if r is not None}
    mon = page.locator('.lt-monitor').first
    steps = int(mon.get_attribute('data-steps'))
    assert steps > 10 and len(renders) >= 3, f'monitor: {steps} steps, render counts seen {sorted(renders)}'
    assert page.locator('.lt-training-monitor img').first.evaluate('e => e.naturalWidth') > 100
    # per-modality validation curves, which grew while training ran (a count between none and the final one was shown)
    val_final = int(mon.get_attribute('data-val-points'))
    val_seen = {int(v) for v in page.evaluate('() => [...window.__val]') if v is not None}
    assert mon.get_attribute('data-val-modalities') == 'atmosphere,imagery', mon.get_attribute('data-val-modalities')
    assert val_final >= 10 and any(0 < v < val_final for v in val_seen), f'validation points: final {val_final}, seen {sorted(val_seen)}'
    # the embedding map: a static image, and the offline Leaflet map with its image overlay
    maps = page.locator('.lt-embedding-explorer')
    assert maps.count() == 2
    assert maps.nth(0).locator('img').first.evaluate('e => e.naturalWidth') > 100
    leaflet = page.frame_locator('.lt-embedding-explorer iframe').first
    leaflet.locator('.leaflet-container').wait_for(timeout=30_000)
    assert leaflet.locator('img.leaflet-image-layer').count() == 1
    # the UMAP scatter: one circle per point, each with a hover title naming a place
    circles = page.locator('.lt-umap-explorer svg.lt-scatter circle')
    assert circles.count() >= 500
    title = circles.first.locator('title').text_content()
    assert ', ' in title and '(' in title, title
    # the probe view: table and bar chart
    assert page.locator('.lt-probe-view table.lt-probe-table').count() == 1
    assert 'melt-small' in page.locator('.lt-probe-view table').inner_text()
    assert page.locator('.lt-probe-view img').first.evaluate('e => e.naturalWidth') > 100
    compare, concepts = _check_comparison(page), _check_concepts(page)
    # screenshots (test artefacts), none blank
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = {'compare.png': compare, 'lab.png': page, 'monitor.png': page.locator('.lt-training-monitor').first, 'embedding-map.png': maps.nth(0),
             'leaflet.png': maps.nth(1), 'umap.png': page.locator('.lt-umap-explorer').first,
             'probes.png': page.locator('.lt-probe-view').first, 'concepts.png': concepts}
    for name, target in shots.items():
        if target is not page: target.scroll_into_view_if_needed()
        target.screenshot(path=str(ARTIFACTS / name))
        assert image_std(ARTIFACTS / name) > 10, f'{name} looks blank'
    (ARTIFACTS / 'lab-run.json').write_text(json.dumps({'run_all_seconds': round(seconds, 1), 'monitor_steps': steps,
                                                        'monitor_renders_seen': sorted(renders), 'validation_points_seen': sorted(val_seen)}))

def _srcs(cmp) -> list:
    return [cmp.locator(f'img.lt-compare-{k}').get_attribute('src') for k in ('left', 'right', 'diff')]

def _wait_renders(page, cmp, more_than:int, **attrs):
    "Wait until the comparison's status line shows a later render (and the given data attributes)."
    sel = '.lt-compare-explorer .lt-compare-status'
    want = ''.join(f'[data-{k}="{v}"]' for k, v in attrs.items())
    page.wait_for_function(f"""() => {{ const e = document.querySelector('{sel}{want}'); return !!e && +e.dataset.renders > {more_than}; }}""",
                           timeout=60_000)
    return int(cmp.locator('.lt-compare-status').get_attribute('data-renders'))

def _check_comparison(page):
    "The comparison explorer: two maps, a difference map and two probe tables; one resolution control redraws both maps."
    cmp = page.locator('.lt-compare-explorer')
    assert cmp.count() == 1
    cmp = cmp.first; cmp.scroll_into_view_if_needed()
    for k in ('left', 'right', 'diff'): assert cmp.locator(f'img.lt-compare-{k}').evaluate('e => e.naturalWidth') > 100, k
    tables = cmp.locator('table.lt-compare-table')
    assert tables.count() == 2
    assert 'melt-small' in tables.nth(0).inner_text() and 'satclip-small' in tables.nth(1).inner_text()
    status = cmp.locator('.lt-compare-status')
    assert status.get_attribute('data-res') == '2' and status.get_attribute('data-difference') == 'linear disagreement'
    renders, before = int(status.get_attribute('data-renders')), _srcs(cmp)
    cmp.locator('.lt-compare-res_deg select').select_option(label='5°')  # one control ...
    renders = _wait_renders(page, cmp, renders, res='5')
    after = _srcs(cmp)
    assert all(a != b for a, b in zip(after, before)), 'both maps and the difference map must be redrawn'  # ... drives both maps
    for k in ('left', 'right', 'diff'): cmp.locator(f'img.lt-compare-{k}').wait_for(); assert cmp.locator(f'img.lt-compare-{k}').evaluate('e => e.naturalWidth') > 100
    cmp.locator('.lt-compare-difference button', has_text='joint PCA').click()
    _wait_renders(page, cmp, renders, difference='joint PCA')
    assert _srcs(cmp)[2] != after[2], 'the difference view must be redrawn'
    return cmp

def _check_concepts(page):
    "The concept explorer: a concept's world map; choosing another concept in the dropdown redraws it."
    ce = page.locator('.lt-concept-explorer')
    assert ce.count() == 1
    ce = ce.first; ce.scroll_into_view_if_needed()
    img, status = ce.locator('img.lt-concept-map'), ce.locator('.lt-concept-status')
    assert img.evaluate('e => e.naturalWidth') > 100
    before, concept, renders = img.get_attribute('src'), status.get_attribute('data-concept'), int(status.get_attribute('data-renders'))
    ce.locator('select').select_option(index=2)
    page.wait_for_function("() => { const e = document.querySelector('.lt-concept-explorer .lt-concept-status'); "
                           f"return !!e && +e.dataset.renders > {renders}; }}", timeout=60_000)
    assert status.get_attribute('data-concept') != concept and img.get_attribute('src') != before, 'the map must be redrawn'
    return ce

def test_widgets_notebook_runs_in_jupyterlab(lab, browser):
    for attempt in (1, 2):  # one retry: a rare miss under load was seen on 2-core machines
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        try:
            _check(page, _run_notebook(page, lab, _name(attempt))); return
        except Exception as e:
            ARTIFACTS.mkdir(parents=True, exist_ok=True); page.screenshot(path=str(ARTIFACTS / f'failure-{attempt}.png'))
            (ARTIFACTS / f'failure-{attempt}.txt').write_text(f'{type(e).__name__}: {e}')
            if attempt == 2: raise AssertionError(f'failed twice; first: {first}') from e
            first = f'{type(e).__name__}: {e}'
            page.evaluate(RESET_SESSIONS)
        finally: page.close()
