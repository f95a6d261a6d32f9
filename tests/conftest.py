"Shared by the browser tests (test_docs.py, test_lab.py): Debian's Chromium, driven by Playwright from PyPI."
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
