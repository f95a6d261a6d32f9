"""The docs site, offline, in a real browser. `tools/docs.py` runs `nbdev_proc_nbs` (the processing `nbdev_docs` does
before Quarto) and renders every processed notebook to static HTML with nbconvert; here each page is served on
127.0.0.1 and opened in Debian's Chromium (Playwright from PyPI, never a downloaded browser). Every page must load with
no console error and no failed request, send nothing beyond 127.0.0.1, show as many images as its notebook has image
outputs (each decoded, natural width > 0), show its maps (Leaflet inside the iframe), and every link between pages must
reach an existing page and anchor. Every page is screenshotted whole (test-artifacts/docs/, gitignored) and must not
be blank. Every figure — an image in a cell's output — must have a caption: Quarto's `#| fig-cap:` cell option, which
Quarto (and tools/docs.py offline) shows as a <figcaption> under the cell's figures; a figure counts as captioned
when its output cell shows a non-empty figcaption. A small fixture site proves the checks fail when they should. The
expected numbers come from the source notebooks in nbs/, not from the renderer."""
import functools, html, http.server, importlib.util, json, re, shutil, threading
from pathlib import Path
from urllib.parse import urljoin, urlparse, unquote
import pytest
from conftest import needs_chromium

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.name for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
IMAGE_MIMES = ('image/png', 'image/jpeg', 'image/gif', 'image/svg+xml')
ARTIFACTS = ROOT / 'test-artifacts' / 'docs'  # gitignored

pytestmark = needs_chromium


def _load_docs_tool():
    spec = importlib.util.spec_from_file_location('docs_tool', ROOT / 'tools' / 'docs.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

docs_tool = _load_docs_tool()

# --- what each notebook should show, read from the source notebook ----------------------------------------------

def _directives(src: str) -> dict:
    d = {}
    for line in src.splitlines():
        m = re.match(r'\s*#\|\s*([\w-]+)\s*:?\s*(.*)$', line)
        if not m: break
        d[m[1]] = m[2].strip().strip('"\'').lower() or 'true'
    return d

def _visible_code_cells(nb_path: Path):
    "Code cells a docs reader sees (not `#| hide`, `#| export*`, `#| include: false`, `#| output: false`) with their options."
    for c in json.loads(nb_path.read_text())['cells']:
        if c['cell_type'] != 'code': continue
        d = _directives(''.join(c.get('source', '')))
        if d.keys() & {'hide', 'export', 'exporti', 'default_exp'} or 'false' in (d.get('include'), d.get('output')): continue
        yield c, d

def expected_figures(nb_path: Path) -> tuple[int, int]:
    "(image outputs, map outputs) of the cells a docs reader sees, plus the images in markdown cells."
    images = sum(len(re.findall(r'!\[[^\]]*\]\([^)]+\)', ''.join(c.get('source', ''))))
                 for c in json.loads(nb_path.read_text())['cells'] if c['cell_type'] == 'markdown')
    maps = 0
    for c, _ in _visible_code_cells(nb_path):
        for o in c.get('outputs', []):
            data = o.get('data', {})
            if any(m in data for m in IMAGE_MIMES): images += 1
            elif '<iframe' in ''.join(data.get('text/html', '')): maps += 1
    return images, maps

def uncaptioned_figures(nb_path: Path) -> int:
    "Image outputs of visible cells that have no `#| fig-cap:` (Quarto's figure caption)."
    return sum(any(m in o.get('data', {}) for m in IMAGE_MIMES) for c, d in _visible_code_cells(nb_path)
               if not d.get('fig-cap') for o in c.get('outputs', []))

# --- serving and checking pages --------------------------------------------------------------------------------

class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass

def serve(directory: Path):
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(directory)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f'http://127.0.0.1:{srv.server_address[1]}/'

@functools.lru_cache(maxsize=None)
def _ids(path: Path) -> frozenset:
    return frozenset(html.unescape(i) for i in re.findall(r'\sid="([^"]*)"', path.read_text(encoding='utf-8')))

# every figure in a cell output, with the caption its output cell shows ('' when none)
FIGURE_CAPTIONS = """() => [...document.querySelectorAll('main .jp-OutputArea-output img, main .jp-RenderedSVG svg')].map(e => {
  const cell = e.closest('.jp-Cell'), cap = cell && cell.querySelector('figcaption');
  return {src: (e.getAttribute('src') || 'svg').slice(0, 60), caption: cap ? cap.textContent.trim() : ''};
})"""

def _image_std(path) -> float:
    from PIL import Image, ImageStat
    return ImageStat.Stat(Image.open(path).convert('L')).stddev[0]

def check_page(context, base: str, site: Path, href: str, shot: Path | None = None) -> dict:
    """Open one page; return its problems (console errors, failed or outside requests, blank images, broken links),
    counts, and its figures' captions; with `shot`, save a full-page screenshot there."""
    problems, page = [], context.new_page()
    page.on('console', lambda m: m.type == 'error' and problems.append(f'console error: {m.text}'))
    page.on('pageerror', lambda e: problems.append(f'page error: {e}'))
    page.on('requestfailed', lambda r: problems.append(f'failed request: {r.url} ({r.failure})'))
    def on_request(r):
        u = urlparse(r.url)
        if u.scheme in ('http', 'https', 'ws', 'wss') and u.hostname != '127.0.0.1': problems.append(f'request leaves 127.0.0.1: {r.url}')
    page.on('request', on_request)
    try:
        resp = page.goto(base + href, wait_until='load', timeout=60_000)
        if resp is None or not resp.ok: problems.append(f'{href} answered {resp and resp.status}')
        page.wait_for_load_state('networkidle', timeout=30_000)
        imgs = page.eval_on_selector_all('main img', '''els => els.map(e => ({src: e.src.slice(0, 60), complete: e.complete,
                                                                        w: e.naturalWidth, h: e.naturalHeight}))''')
        svgs = page.eval_on_selector_all('main .jp-RenderedSVG svg', 'els => els.length')
        for im in imgs:
            if not (im['complete'] and im['w'] > 0 and im['h'] > 0): problems.append(f'image not decoded: {im["src"]}')
        maps = 0
        for fr in page.query_selector_all('main .jp-OutputArea-output iframe'):
            f = fr.content_frame()
            if f is None: problems.append('map iframe has no frame'); continue
            fr.scroll_into_view_if_needed()
            try: f.wait_for_selector('.leaflet-container', timeout=15_000); maps += 1
            except Exception: problems.append('iframe without a Leaflet map')
        figures = page.evaluate(FIGURE_CAPTIONS)
        if shot is not None:
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
        if page.query_selector('main .jupyter-widgets, main script[type="application/vnd.jupyter.widget-view+json"]'):
            problems.append('a live widget view (empty box without a widget manager)')
        hrefs = page.eval_on_selector_all('a[href]', 'els => els.map(e => e.getAttribute("href"))')
        page_ids = set(page.eval_on_selector_all('[id]', 'els => els.map(e => e.id)'))
        links = 0
        for h in hrefs:
            u = urlparse(urljoin(base + href, h))
            if u.scheme not in ('http', 'https') or u.hostname != '127.0.0.1': continue
            links += 1
            target = site / unquote(u.path.lstrip('/'))
            if not target.is_file(): problems.append(f'broken link: {h}'); continue
            if u.fragment:
                ids = page_ids if target.name == href else _ids(target)
                if unquote(u.fragment) not in ids: problems.append(f'broken anchor: {h}')
    finally:
        page.close()
    return dict(problems=problems, images=len(imgs) + svgs, maps=maps, links=links, figures=figures,
                uncaptioned=[f['src'] for f in figures if not f['caption']])

# --- fixtures ----------------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def context(browser):
    ctx = browser.new_context()
    # nothing may leave the machine: anything not on 127.0.0.1 is aborted (and so reported as a failed request)
    ctx.route(re.compile(r'^(?!http://127\.0\.0\.1[:/]|data:|about:|blob:).*'), lambda route: route.abort())
    yield ctx
    ctx.close()

@pytest.fixture(scope='session')
def site(tmp_path_factory):
    "The docs of nbs/ as committed, rendered once per session."
    out = tmp_path_factory.mktemp('docs') / '_docs'
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    pages, errors = docs_tool.build(ROOT / 'nbs', out)
    srv, base = serve(out)
    yield dict(out=out, pages={p['source']: p for p in pages}, errors=errors, base=base)
    srv.shutdown()

# --- the real site ---------------------------------------------------------------------------------------------

def test_nbdev_processes_every_notebook(site):
    "`nbdev_proc_nbs` (what `nbdev_docs` runs before Quarto) must process every notebook."
    assert not site['errors'], 'nbdev_proc_nbs failed on:\n\n' + '\n\n'.join(f'{k}: {v}' for k, v in site['errors'].items())

def test_every_notebook_has_a_page(site):
    missing = [n for n in NOTEBOOKS if n not in site['pages']]
    assert not missing, f'no docs page for {missing}'
    assert site['pages']['index.ipynb']['href'] == 'index.html'
    hrefs = [p['href'] for p in site['pages'].values()]
    assert len(set(hrefs)) == len(hrefs), hrefs

@pytest.mark.parametrize('notebook', NOTEBOOKS)
def test_page(site, context, notebook):
    if notebook not in site['pages']: pytest.fail(f'{notebook} has no page: {site["errors"].get(notebook, "")[:2000]}')
    page = site['pages'][notebook]
    shot = ARTIFACTS / page['href'].replace('.html', '.png')
    r = _RESULTS[notebook] = check_page(context, site['base'], site['out'], page['href'], shot=shot)
    assert _image_std(shot) > 5, f'{shot.name} looks blank'
    assert not r['problems'], f"{page['href']}:\n" + '\n'.join(r['problems'][:30])
    images, maps = expected_figures(ROOT / 'nbs' / notebook)
    assert (r['images'], r['maps']) == (images, maps), f"{page['href']}: {r['images']} images, {r['maps']} maps on the page; notebook has {images}, {maps}"
    html_text = (site['out'] / page['href']).read_text()
    assert all(f'href="{p["href"]}"' in html_text for p in site['pages'].values()), 'the sidebar must link every page'
    assert r['links'] >= len(site['pages'])

_RESULTS = {}  # check_page's result per notebook, kept by test_page for the caption test

# --- a fixture site that must be flagged -------------------------------------------------------------------------

def _nb(*cells) -> str:
    cs = []
    for kind, src, *outs in cells:
        c = dict(cell_type=kind, metadata={}, source=src)
        if kind == 'code': c.update(execution_count=1, outputs=list(outs))
        cs.append(c)
    return json.dumps(dict(cells=cs, metadata=dict(kernelspec=dict(name='python3', display_name='Python 3', language='python')),
                           nbformat=4, nbformat_minor=5))

# a 2x1 red PNG
PNG = ('iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAIAAAB7QOjdAAAAEElEQVR4nGP4z8DAwMDAAAAV/gH/x8PqfAAAAABJRU5ErkJggg==')

@pytest.fixture(scope='module')
def fixture_site(tmp_path_factory):
    d = tmp_path_factory.mktemp('fixture')
    nbs = d / 'nbs'; nbs.mkdir()
    widget = dict(output_type='display_data', metadata={}, data={
        'application/vnd.jupyter.widget-view+json': dict(model_id='abc', version_major=2, version_minor=0),
        'image/png': PNG, 'text/plain': 'HBox(children=(...))'})
    tqdm = dict(output_type='display_data', metadata={}, data={
        'application/vnd.jupyter.widget-view+json': dict(model_id='def', version_major=2, version_minor=0),
        'text/plain': 'Loading: 100%|##########| 3/3'})
    try:
        import offlinefolium
        leaflet = offlinefolium.Map(location=[53.55, 9.99], zoom_start=3, tiles=None)._repr_html_()
    except ImportError: leaflet = None
    outs = [widget, tqdm] + ([dict(output_type='display_data', metadata={}, data={'text/html': leaflet, 'text/plain': 'Map'})] if leaflet else [])
    (nbs / 'index.ipynb').write_text(_nb(
        ('markdown', '# Fixture\n\n> a fixture site'),
        ('markdown', 'See [the widgets](01_widgets.ipynb#a-section) and [nothing](02_missing.ipynb).'),
        ('markdown', 'Energy: $E = mc^2$ and $$\\sum_{i=1}^{n} i$$')))
    (nbs / '01_widgets.ipynb').write_text(_nb(
        ('markdown', '# Widgets\n\n> widget and map outputs'),
        ('markdown', '## A section\n\nBack [home](index.ipynb).'),
        ('code', 'w = 1', *outs),
        ('code', '#| fig-cap: "Two red <pixels>, `side by side`"\nw', dict(output_type='display_data', metadata={}, data={'image/png': PNG})),
        ('code', '#| hide\nw', dict(output_type='display_data', metadata={}, data={'image/png': PNG}))))
    (nbs / '03_broken.ipynb').write_text(_nb(
        ('markdown', '# Broken\n\n> nbdev cannot process this'),
        ('code', '#| export\ndef f(): return 1'),  # a notebook with exports gets its import cells re-run by nbdev
        ('code', 'import os\nprint(undefined_name)')))
    (d / 'cdn.html').write_text('<html><head><script src="https://cdn.jsdelivr.net/npm/katex/dist/katex.min.js"></script></head>'
                                '<body><main><img src="missing.png"><a href="nowhere.html#x">x</a>'
                                '<div class="jupyter-widgets"></div><script>not_defined_anywhere()</script></main></body></html>')
    out = d / '_docs'
    pages, errors = docs_tool.build(nbs, out)
    (out / 'cdn.html').write_text((d / 'cdn.html').read_text())
    srv, base = serve(out)
    yield dict(out=out, pages={p['source']: p for p in pages}, errors=errors, base=base, leaflet=leaflet is not None)
    srv.shutdown()

def test_fixture_processing_error_is_reported(fixture_site):
    assert list(fixture_site['errors']) == ['03_broken.ipynb']
    assert "undefined_name" in fixture_site['errors']['03_broken.ipynb']
    assert sorted(fixture_site['pages']) == ['01_widgets.ipynb', 'index.ipynb']

def test_fixture_widgets_fall_back_to_images_and_maps_load(fixture_site, context):
    fs = fixture_site
    shot = fs['out'].parent / 'widgets.png'
    r = check_page(context, fs['base'], fs['out'], fs['pages']['01_widgets.ipynb']['href'], shot=shot)
    assert r['problems'] == []
    assert (r['images'], r['maps']) == expected_figures(Path(fs['out']).parent / 'nbs' / '01_widgets.ipynb') == (2, int(fs['leaflet']))
    assert _image_std(shot) > 5 and shot.stat().st_size > 1000  # the screenshot shows the page

def test_fixture_figure_without_caption_is_reported(fixture_site, context):
    fs = fixture_site
    r = check_page(context, fs['base'], fs['out'], fs['pages']['01_widgets.ipynb']['href'])
    # the widget snapshot has no fig-cap; the second figure's caption is shown as written, markup escaped, code kept
    assert [f['caption'] for f in r['figures']] == ['', 'Two red <pixels>, side by side']
    assert len(r['uncaptioned']) == 1 == uncaptioned_figures(Path(fs['out']).parent / 'nbs' / '01_widgets.ipynb')
    assert '<code>side by side</code></figcaption>' in (fs['out'] / 'widgets.html').read_text()
    page = (fs['out'] / 'widgets.html').read_text()
    assert 'Loading: 100%' in page and 'widget-view+json' not in page  # the widget without a snapshot shows its text

def test_fixture_broken_link_is_reported(fixture_site, context):
    fs = fixture_site
    r = check_page(context, fs['base'], fs['out'], 'index.html')
    assert r['problems'] == ['broken link: 02_missing.ipynb'], r['problems']
    assert '<math' in (fs['out'] / 'index.html').read_text()  # LaTeX rendered to MathML, no MathJax from a CDN

def test_fixture_cdn_script_blank_image_widget_box_and_js_error_are_reported(fixture_site, context):
    fs = fixture_site
    r = check_page(context, fs['base'], fs['out'], 'cdn.html')
    text = '\n'.join(r['problems'])
    assert 'request leaves 127.0.0.1: https://cdn.jsdelivr.net' in text
    assert 'failed request: https://cdn.jsdelivr.net' in text
    assert 'image not decoded' in text and 'broken link: nowhere.html#x' in text
    assert 'a live widget view' in text and 'not_defined_anywhere' in text

# --- captions, last: the fixture proves the check, then every real page (kept after the other checks, so a `-x`
#     run sees those first)

@pytest.mark.parametrize('notebook', NOTEBOOKS)
def test_figures_have_captions(site, context, notebook):
    "Every figure a page shows in a cell output has a caption (`#| fig-cap:`), and the page shows the ones the notebook has."
    if notebook not in site['pages']: pytest.fail(f'{notebook} has no page')
    r = _RESULTS.get(notebook) or check_page(context, site['base'], site['out'], site['pages'][notebook]['href'])
    want = uncaptioned_figures(ROOT / 'nbs' / notebook)
    assert len(r['uncaptioned']) == want, f"page shows {len(r['uncaptioned'])} figures without a caption, the notebook has {want}"
    assert not r['uncaptioned'], (f"{notebook}: {len(r['uncaptioned'])} of {len(r['figures'])} figures have no caption "
                                  "(add `#| fig-cap: ...` to the cell that draws each)")
