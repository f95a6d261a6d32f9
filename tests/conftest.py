"""Shared by the browser tests (test_docs.py, test_lab.py, test_lab_notebooks.py): Debian's Chromium, driven by
Playwright from PyPI, and a JupyterLab server on 127.0.0.1 with its own settings, config and runtime folders."""
import contextlib, json, os, shutil, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

CHROMIUM = '/usr/bin/chromium'  # the Debian package (`make /usr/bin/chromium`), never a browser Playwright downloads
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync', '--no-first-run', '--disable-quic']
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f'{CHROMIUM} missing: make /usr/bin/chromium (Debian package)')

# module scope: one module's sync Playwright driver stops before the next module starts its own
@pytest.fixture(scope='module')
def browser():
    sync_api = pytest.importorskip('playwright.sync_api')
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()

def image_std(path) -> float:
    "Standard deviation of a screenshot's grey levels: near 0 for a blank image."
    from PIL import Image, ImageStat
    return ImageStat.Stat(Image.open(path).convert('L')).stddev[0]

# JupyterLab user settings: no news / update pop-ups, and every cell kept in the DOM (JupyterLab 4 virtualises
# off-screen cells by default, which would hide outputs and widgets from the DOM checks)
LAB_SETTINGS = {'@jupyterlab/apputils-extension/notification.jupyterlab-settings': {'fetchNews': 'false', 'checkForUpdates': False},
                '@jupyterlab/notebook-extension/tracker.jupyterlab-settings': {'windowingMode': 'none'}}

# the current notebook's kernel is started, connected and idle
KERNEL_READY = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle' && k.connectionStatus === 'connected';
}"""

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

def _wait_ready(url, proc, timeout=90):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None: raise RuntimeError(f'jupyter lab exited with {proc.returncode}')
        try:
            with urllib.request.urlopen(url + '/api/status', timeout=2) as r:
                if r.status == 200: return
        except OSError: time.sleep(0.5)
    raise TimeoutError(f'jupyter lab did not answer {url}/api/status within {timeout} s')

@contextlib.contextmanager
def jupyter_lab(nbdir:Path, workdir:Path, env:dict, log_to:Path|None=None):
    """JupyterLab serving `nbdir` (started there, so kernels start there too) on a free port of 127.0.0.1, with no token,
    its settings, config, runtime and workspace folders under `workdir`, and `env` as its (and its kernels')
    environment; yields its URL, and copies its log to `log_to` when it stops."""
    settings = workdir / 'settings'
    for name, value in LAB_SETTINGS.items():
        plugin, file = name.rsplit('/', 1)
        (settings / plugin).mkdir(parents=True, exist_ok=True); (settings / plugin / file).write_text(json.dumps(value))
    env = {**env, 'JUPYTERLAB_SETTINGS_DIR': str(settings), 'JUPYTERLAB_WORKSPACES_DIR': str(workdir / 'workspaces'),
           'JUPYTER_CONFIG_DIR': str(workdir / 'config'), 'JUPYTER_RUNTIME_DIR': str(workdir / 'runtime')}
    port, log_path = _free_port(), workdir / 'jupyter.log'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen([sys.executable, '-m', 'jupyterlab', '--no-browser', '--allow-root', f'--port={port}',
                                 '--ServerApp.port_retries=0', '--ip=127.0.0.1', '--IdentityProvider.token=', '--ServerApp.password=',
                                 f'--notebook-dir={nbdir}', '--LabApp.expose_app_in_browser=True'],
                                cwd=nbdir, env=env, stdout=log, stderr=subprocess.STDOUT)
        url = f'http://127.0.0.1:{port}'
        try:
            _wait_ready(url, proc)
            yield url
        finally:
            proc.terminate()
            try: proc.wait(20)
            except subprocess.TimeoutExpired: proc.kill(); proc.wait()
            if log_to is not None: log_to.parent.mkdir(parents=True, exist_ok=True); shutil.copy(log_path, log_to)
