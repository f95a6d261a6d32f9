"""Every notebook in nbs/ (index included) opened in a real JupyterLab and run top to bottom (Run All Cells), driven by
Playwright (from PyPI) in Debian's Chromium: each must finish with every code cell executed and no error output.

The notebooks run as `nbdev_test` runs them, so a failure here that `nbdev_test` does not show is the lab's doing
(a path, the working folder, the front end): JupyterLab and its kernels get `IN_TEST=1`, so the notebooks shrink their
work as under the notebook tests; the cells `nbdev_test` skips are dropped (those flagged with settings.ini's
`tst_flags`, `#| eval: false`, and `nbdev_export()` calls); the repository comes first on the kernels' path; and
each notebook runs from its own folder. That folder is a temporary copy of nbs/ (with `runs` beside it, linked to
the repository's, as `../runs` is for a notebook in nbs/), so the lab never saves outputs into the repository.

One server runs all the notebooks, two at a time, each in its own page, workspace and kernel; a notebook's kernel is
shut down when it finishes. The first test whose notebook is not finished yet waits for it while the next ones run.
After each run the page is screenshotted (test-artifacts/lab-notebooks/<notebook>.png, at the first error if there is
one, else at the last cell) and the run times go to test-artifacts/lab-notebooks/runs.json. Two fixture notebooks
prove the check: one fails in its second code cell and must be reported there, with its later cells not run and its
skipped cell not run at all; the other must see the test environment (IN_TEST, its folder, the repository's package)."""
import configparser, json, os, re, shutil, time
from pathlib import Path
import pytest
from conftest import needs_chromium, jupyter_lab, image_std, KERNEL_READY

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
NOTEBOOKS = sorted(p.name for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')))
ARTIFACTS = ROOT / 'test-artifacts' / 'lab-notebooks'  # gitignored
PARALLEL = 2  # notebooks running at once
RUN_TIMEOUT_S = 1800  # one notebook's Run All, at most (10_probes took 650 s on a 2-core machine at load 15)
pytestmark = needs_chromium


def _tst_flags() -> set:
    "The cell flags `nbdev_test` skips: settings.ini's tst_flags."
    cfg = configparser.ConfigParser(); cfg.read(ROOT / 'settings.ini')
    return set(cfg['DEFAULT'].get('tst_flags', '').split())

SKIP_FLAGS = _tst_flags()

def _directives(src:str) -> dict:
    "A cell's leading `#| name: value` lines, as nbdev reads them."
    d = {}
    for line in src.splitlines():
        m = re.match(r'\s*#\|\s*([\w-]+)\s*:?\s*(.*)$', line)
        if not m: break
        d[m[1]] = m[2].strip().strip('"\'').lower()
    return d

def _runs_under_nbdev_test(cell:dict) -> bool:
    if cell['cell_type'] != 'code': return True
    src = ''.join(cell['source'])
    d = _directives(src)
    return 'nbdev_export(' not in src and d.get('eval') != 'false' and not (SKIP_FLAGS & d.keys())

def lab_copy(src:Path, dst:Path):
    "Write `src` to `dst` as `nbdev_test` runs it: outputs cleared, the cells it skips dropped."
    nb = json.loads(src.read_text())
    nb['cells'] = [c for c in nb['cells'] if _runs_under_nbdev_test(c)]
    for c in nb['cells']:
        if c['cell_type'] == 'code': c['outputs'], c['execution_count'] = [], None
    dst.write_text(json.dumps(nb, indent=1))

# The run's state, from the notebook's model (not its DOM): for each non-empty code cell, its execution count, whether
# its prompt shows it running or queued, and its error outputs (and stderr tracebacks); and the kernel's status.
STATE = r"""() => {
  const w = window.jupyterapp.shell.currentWidget, k = w.sessionContext.session && w.sessionContext.session.kernel;
  const m = w.content.model, views = w.content.widgets, cells = [];
  for (let i = 0; i < m.cells.length; i++) {
    const c = m.cells.get(i);
    if (c.type !== 'code' || !c.sharedModel.getSource().trim()) continue;
    const errors = [];
    for (let j = 0; j < c.outputs.length; j++) {
      const o = c.outputs.get(j).toJSON();
      if (o.output_type === 'error') errors.push(`${o.ename}: ${o.evalue}\n${(o.traceback || []).join('\n')}`);
      else if (o.output_type === 'stream' && o.name === 'stderr' && [].concat(o.text).join('').includes('Traceback (most recent call last)'))
        errors.push([].concat(o.text).join(''));
    }
    const prompt = views[i].node.querySelector('.jp-InputArea-prompt');
    cells.push({index: i, count: c.executionCount, busy: !!prompt && prompt.textContent.includes('*'),
                head: c.sharedModel.getSource().split('\n').filter(l => !l.startsWith('#|'))[0] || '', errors});
  }
  return {kernel: k ? k.status : 'none', cells};
}"""

def _ansi_free(s:str) -> str: return re.sub(r'\x1b\[[0-9;]*m', '', s)

class LabRunner:
    "Runs notebooks in one JupyterLab, `parallel` at a time, each in its own page; `result(name)` waits for one."
    def __init__(self, browser, url:str, names:list, parallel:int=PARALLEL):
        self.browser, self.url, self.queue, self.parallel = browser, url, list(names), parallel
        self.running, self.results = {}, {}

    def _start(self, name:str):
        page = self.browser.new_page(viewport={'width': 1400, 'height': 1000})
        t0 = time.monotonic()
        try:
            page.goto(f'{self.url}/lab/workspaces/run-{Path(name).stem}/tree/{name}')  # a workspace of its own: nothing restored
            page.wait_for_selector('.jp-NotebookPanel .jp-Cell', timeout=60_000)
            page.wait_for_function(KERNEL_READY, timeout=120_000)
            page.evaluate('() => window.jupyterapp.shell.collapseLeft()')  # the notebook, full width, in the screenshots
            # fire and poll: awaiting the command's promise once hung with no cell started
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        except Exception as e:
            self._finish(name, page, t0, None, f'{type(e).__name__} before the run started: {e}'); return
        self.running[name] = dict(page=page, t0=t0, done_polls=0)

    def _poll(self, name:str):
        r = self.running[name]
        try: st = r['page'].evaluate(STATE)
        except Exception as e: return self._finish(name, r['page'], r['t0'], None, f'{type(e).__name__} while polling: {e}')
        cells = st['cells']
        failed = any(c['errors'] for c in cells)
        settled = st['kernel'] == 'idle' and not any(c['busy'] for c in cells)
        done = settled and (failed or all(c['count'] is not None for c in cells))
        r['done_polls'] = r['done_polls'] + 1 if done else 0
        if r['done_polls'] >= 2: self._finish(name, r['page'], r['t0'], st)  # the same answer twice, half a second apart
        elif time.monotonic() - r['t0'] > RUN_TIMEOUT_S:
            self._finish(name, r['page'], r['t0'], st, f'not finished after {RUN_TIMEOUT_S} s')

    def _finish(self, name:str, page, t0:float, st, problem:str|None=None):
        seconds = time.monotonic() - t0
        cells = st['cells'] if st else []
        errors = [c for c in cells if c['errors']]
        res = dict(seconds=round(seconds, 1), code_cells=len(cells), executed=sum(c['count'] is not None for c in cells),
                   errors=[dict(cell=c['index'], count=c['count'], head=c['head'], error=_ansi_free(c['errors'][0])[-3000:]) for c in errors],
                   not_run=[c['index'] for c in cells if c['count'] is None], problem=problem)
        at = errors[0]['index'] if errors else (cells[-1]['index'] if cells else None)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f'{Path(name).stem}.png'
        try:
            if at is not None: page.evaluate(f'() => window.jupyterapp.shell.currentWidget.content.widgets[{at}].node.scrollIntoView()')
            page.screenshot(path=str(shot)); res['screenshot_std'] = round(image_std(shot), 1)
            page.evaluate('async () => { await window.jupyterapp.shell.currentWidget.sessionContext.shutdown(); }')  # free its memory now
        except Exception as e: res['problem'] = res['problem'] or f'{type(e).__name__} after the run: {e}'
        finally: page.close()
        self.running.pop(name, None); self.results[name] = res

    def result(self, name:str) -> dict:
        "The finished run of `name`, starting and polling the queued notebooks (in order) until it is there."
        if name not in self.results and name not in self.running and name in self.queue: self.queue.remove(name); self.queue.insert(0, name)
        while name not in self.results:
            while self.queue and len(self.running) < self.parallel: self._start(self.queue.pop(0))
            for n in list(self.running): self._poll(n)
            time.sleep(0.5)
        return self.results[name]

def fixtures() -> dict:
    "Fixture notebooks, name -> code cells: each checks one thing the runner must get right."
    skipped = f'#| {sorted(SKIP_FLAGS)[0]}' if SKIP_FLAGS else '#| eval: false'
    return {'_fixture_fails.ipynb': ['x = 1', 'raise ValueError("fixture error")', 'y = 2', f'{skipped}\nraise RuntimeError("a skipped cell ran")'],
            '_fixture_env.ipynb': ['import os, location_tying\nfrom pathlib import Path',
                                   "assert os.environ.get('IN_TEST') == '1'",
                                   f"assert Path.cwd().name == 'nbs' and Path('00_coords.ipynb').exists() and Path('../runs').exists() == {(ROOT / 'runs').exists()}",
                                   f"assert Path(location_tying.__file__).resolve().parent == Path({str((ROOT / 'location_tying').resolve())!r})",
                                   '#| eval: false\nraise RuntimeError("an eval: false cell ran")']}

def _fixture_nb(cells:list) -> dict:
    return {'cells': [{'cell_type': 'markdown', 'metadata': {}, 'source': '# Fixture'}]
                     + [{'cell_type': 'code', 'execution_count': None, 'metadata': {}, 'outputs': [], 'source': s} for s in cells],
            'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}}, 'nbformat': 4, 'nbformat_minor': 5}

@pytest.fixture(scope='module')
def runner(tmp_path_factory, browser, request):
    d = tmp_path_factory.mktemp('lab-notebooks')
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    nbdir = d / 'nbs'
    shutil.copytree(NBS, nbdir, ignore=shutil.ignore_patterns('*.ipynb', '.ipynb_checkpoints', '_*'))  # data the notebooks read
    for name in NOTEBOOKS: lab_copy(NBS / name, nbdir / name)
    if (ROOT / 'runs').exists(): (d / 'runs').symlink_to(ROOT / 'runs')  # `../runs` as nbdev_test sees it
    for name, cells in fixtures().items():  # through lab_copy like the others: their skipped cells are dropped
        (d / name).write_text(json.dumps(_fixture_nb(cells))); lab_copy(d / name, nbdir / name)
    env = {**os.environ, 'IN_TEST': '1', 'PYTHONPATH': os.pathsep.join([str(ROOT), *filter(None, [os.environ.get('PYTHONPATH')])])}
    # the order the tests ask for them: notebooks deselected with -k are never run
    wanted = [it.callspec.params['notebook'] for it in request.session.items
              if it.module is request.module and hasattr(it, 'callspec') and 'notebook' in it.callspec.params]
    t0 = time.monotonic()
    with jupyter_lab(nbdir, d, env, log_to=ARTIFACTS / 'jupyter.log') as url:
        r = LabRunner(browser, url, [*fixtures(), *wanted])
        yield r
        for n in list(r.running): r.result(n)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / 'runs.json').write_text(json.dumps({'wall_seconds': round(time.monotonic() - t0, 1), 'parallel': PARALLEL,
                                                     'notebooks': r.results}, indent=1))

def test_lab_copy_drops_what_nbdev_test_skips(tmp_path):
    src = tmp_path / 'src.ipynb'
    src.write_text(json.dumps(_fixture_nb(['a = 1', '#| slow\nb = 2', '#| eval: false\nc = 3', 'import nbdev; nbdev.nbdev_export()', '#| hide\nd = 4'])))
    lab_copy(src, tmp_path / 'dst.ipynb')
    assert 'slow' in SKIP_FLAGS  # settings.ini's tst_flags, as nbdev_test reads them
    kept = [''.join(c['source']) for c in json.loads((tmp_path / 'dst.ipynb').read_text())['cells'] if c['cell_type'] == 'code']
    assert kept == ['a = 1', '#| hide\nd = 4']

def test_fixture_error_is_reported_at_its_cell(runner):
    r = runner.result('_fixture_fails.ipynb')
    assert r['problem'] is None, r['problem']
    assert [(e['cell'], e['count']) for e in r['errors']] == [(2, 2)], r['errors']  # cell 0 is markdown
    assert 'ValueError: fixture error' in r['errors'][0]['error'] and r['errors'][0]['head'].startswith('raise ValueError')
    assert r['code_cells'] == 3 and r['not_run'] == [3]  # the skipped cell was dropped; the one after the error never ran

def test_fixture_sees_the_test_environment(runner):
    r = runner.result('_fixture_env.ipynb')
    assert r['problem'] is None and not r['errors'], r
    assert r['code_cells'] == 4 and r['executed'] == 4

@pytest.mark.parametrize('notebook', NOTEBOOKS)
def test_notebook_runs_in_jupyterlab(runner, notebook):
    r = runner.result(notebook)
    assert r['problem'] is None, f"{notebook}: {r['problem']}"
    if r['errors']:
        e = r['errors'][0]
        pytest.fail(f"{notebook}, cell {e['cell']} (In [{e['count']}], `{e['head']}`):\n{e['error']}", pytrace=False)
    assert r['code_cells'] > 0 and r['executed'] == r['code_cells'], f"{notebook}: cells never run: {r['not_run']}"
    assert r['screenshot_std'] > 5, f'{notebook}: the screenshot looks blank'
