"""Render the nbdev docs site offline: `nbdev_proc_nbs`, then nbconvert, one static HTML page per notebook.

The published site is built by `nbdev_docs` with Quarto (see `_quarto.yml`). Quarto cannot be installed offline, so
this script renders the same processed notebooks (nbdev's `_proc/`, hidden cells dropped, `show_doc` rendered) with
nbconvert into `_docs/`, with what Quarto would add: a title from the front matter, a sidebar in nbdev's order
(`sidebar.yml`), page names from `output-file`, pandoc-style heading ids, and links between pages rewritten to the
rendered files. Nothing is loaded from the network: no require.js, MathJax or widget manager from a CDN; a widget
output shows its `image/png` snapshot (or its text), never an empty widget box; LaTeX is rendered to MathML; a
cell's `#| fig-cap:` (Quarto's figure caption) is shown under its figures as a `<figcaption>`, as Quarto shows it.

    python tools/docs.py [--nbs nbs] [--out _docs] [--only NAME ...]

Exit status 1 when a notebook fails `nbdev_proc_nbs` (the failing notebook and cell are printed) or renders badly.
"""
from __future__ import annotations

import argparse, html, json, os, re, shutil, subprocess, sys, tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FILE_RE = r'\.(?:ipynb|qmd|html)$'  # nbdev_docs' own file_re (nbdev_proc_nbs' default '' would list every file)
WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json'

QUARTO_SHIM = '#!/bin/sh\necho "quarto: not installed here (tools/docs.py renders the docs offline)" >&2\nexit 1\n'

# ---------------------------------------------------------------------------------------------------------------
# 1. nbdev's processing, in a staging copy so the working tree is not touched
#    (nbdev_proc_nbs writes nbs/nbdev.yml, nbs/sidebar.yml and rebuilds the library's _modidx.py)

def stage_project(nbs: Path, stage: Path) -> Path:
    "Copy settings.ini, _quarto.yml and the notebooks into `stage`; put a `quarto` shim on its bin/."
    shutil.copy(ROOT/'settings.ini', stage/'settings.ini')
    shutil.copy(ROOT/'_quarto.yml', stage/'_quarto.yml')
    shutil.copytree(nbs, stage/'nbs', symlinks=False,
                    ignore=shutil.ignore_patterns('.ipynb_checkpoints', '_proc', '_docs', 'nbdev.yml', 'sidebar.yml'))
    if not (stage/'nbs'/'_quarto.yml').exists(): shutil.copy(ROOT/'_quarto.yml', stage/'nbs'/'_quarto.yml')
    (stage/'bin').mkdir()
    shim = stage/'bin'/'quarto'
    shim.write_text(QUARTO_SHIM); shim.chmod(0o755)
    return stage


def _env(stage: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    env['PATH'] = f"{stage/'bin'}{os.pathsep}{BIN}{os.pathsep}{env.get('PATH', '')}"  # the shim stops nbdev installing Quarto
    env['PYTHONWARNINGS'] = 'ignore'
    return env


_PROC_EACH = """
import json, sys
from pathlib import Path
from nbdev.serve_drv import main
from nbdev.processors import FilterDefaults
errors = {}
for name in sys.argv[1:]:
    src = Path('nbs')/name
    try: main((src, Path('_proc')/name, FilterDefaults))
    except Exception as e: errors[name] = f'{e}\\ncaused by: {e.__cause__!r}'
print(json.dumps(errors))
"""


def proc_nbs(stage: Path, n_workers: int = 2) -> dict[str, str]:
    "Run `nbdev_proc_nbs` in `stage`; when it fails, process each notebook alone to name every failing one."
    env = _env(stage)
    r = subprocess.run([str(BIN/'nbdev_proc_nbs'), '--n_workers', str(n_workers), '--file_re', FILE_RE],
                       cwd=stage, env=env, capture_output=True, text=True)
    if r.returncode == 0: return {}
    names = sorted(p.name for p in (stage/'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))
    d = subprocess.run([sys.executable, '-c', _PROC_EACH, *names], cwd=stage, env=env,
                       capture_output=True, text=True)
    try: errors = json.loads(d.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError): errors = {}
    return errors or {'nbdev_proc_nbs': (r.stderr + d.stderr)[-3000:]}


def sidebar_order(stage: Path) -> list[str]:
    "The notebooks in nbdev's sidebar order (index first), from the `sidebar.yml` nbdev wrote."
    def walk(items):
        for it in items:
            if isinstance(it, dict): yield from walk(it.get('contents', []))
            else: yield it
    side = yaml.safe_load((stage/'nbs'/'sidebar.yml').read_text())
    return [p for p in walk(side['website']['sidebar']['contents']) if p.endswith('.ipynb')]

# ---------------------------------------------------------------------------------------------------------------
# 2. From processed notebook to a notebook nbconvert renders as Quarto would

_DIRECTIVE = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')


def split_directives(source: str) -> tuple[dict, str]:
    "Quarto cell options (`#| key: value` lines at the top of a cell) and the code without them."
    opts, lines = {}, source.splitlines()
    i = 0
    while i < len(lines) and (m := _DIRECTIVE.match(lines[i])):
        opts[m.group(1)] = m.group(2).strip('"\'').lower() or 'true'
        i += 1
    return opts, '\n'.join(lines[i:])


IMAGE_MIMES = ('image/png', 'image/jpeg', 'image/gif', 'image/svg+xml')


def fig_caption(source: str) -> str | None:
    "The cell's `#| fig-cap:` caption, as written (case kept; a quoted YAML string unquoted), or None."
    for line in source.splitlines():
        m = _DIRECTIVE.match(line)
        if not m: break
        if m.group(1) == 'fig-cap':
            try: cap = yaml.safe_load(m.group(2))
            except yaml.YAMLError: cap = m.group(2)
            return str(cap).strip() if cap else None
    return None


def caption_output(caption: str) -> dict:
    "An output that shows a figure caption under the cell's figures (Quarto renders `fig-cap` as a figcaption)."
    import nbformat
    return nbformat.v4.new_output('display_data', data={'text/html': f'<figcaption class="figure-caption">{inline_code(caption)}</figcaption>'})


def frontmatter(nb: dict) -> dict:
    "The YAML front matter nbdev puts in the first raw cell (title, description, output-file); removes the cell."
    c = nb['cells'][0] if nb['cells'] else None
    src = c['source'] if c else ''  # sources are strings: notebooks are read with nbformat
    if c and c['cell_type'] == 'raw' and src.lstrip().startswith('---'):
        nb['cells'].pop(0)
        return yaml.safe_load(src.strip().strip('-')) or {}
    return {}


def static_output(out: dict) -> dict | None:
    "A widget output as a static page shows it: its `image/png` snapshot, else its text; never an empty widget box."
    data = out.get('data')
    if not data or WIDGET_VIEW not in data: return out
    keep = ('image/png' if 'image/png' in data else 'text/html', 'text/plain')
    out['data'] = {k: v for k, v in data.items() if k in keep}
    return out if out['data'] else None


_PANDOC_LINK = re.compile(r'\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}')
_FENCE = re.compile(r'^:::+\s*(?:\{([^}]*)\}|([\w-]+))?\s*$', re.M)


def quarto_markdown(md: str) -> str:
    "Quarto's markdown extensions that mistune would print as text: `[x](u){attrs}` links and `:::` fenced divs."
    md = _PANDOC_LINK.sub(lambda m: f'<a href="{m[2]}" {m[3]}>{m[1]}</a>', md)
    def div(m):
        attrs = (m[1] or m[2] or '').split()
        if not attrs: return '</div>'
        classes = ' '.join(a[1:] for a in attrs if a.startswith('.')) or (m[2] or '')
        return f'<div class="{classes}">'
    return _FENCE.sub(div, md)


def prepare(nb: dict) -> dict:
    "Apply Quarto's cell options, static widget fallbacks and markdown extensions; drop saved widget state."
    nb['metadata'].pop('widgets', None)  # else nbconvert loads @jupyter-widgets/html-manager from a CDN
    cells = []
    for c in nb['cells']:
        src = c.get('source', '')
        if c['cell_type'] == 'markdown':
            c['source'] = quarto_markdown(src)
        elif c['cell_type'] == 'code':
            opts, code = split_directives(src)
            caption = fig_caption(src)
            if opts.get('include') == 'false' or (not code.strip() and not c.get('outputs')): continue
            c['source'] = code
            tags = c.setdefault('metadata', {}).setdefault('tags', [])
            if opts.get('echo') == 'false' or not code.strip(): tags.append('remove_input')
            if opts.get('output') == 'false': c['outputs'] = []
            outs = []
            for o in c.get('outputs', []):
                o = static_output(o)
                if o is None: continue
                if 'text/markdown' in o.get('data', {}):
                    o['data']['text/markdown'] = quarto_markdown(o['data']['text/markdown'])
                outs.append(o)
            if caption and any(m in o.get('data', {}) for o in outs for m in IMAGE_MIMES): outs.append(caption_output(caption))
            c['outputs'] = outs
        elif c['cell_type'] == 'raw':
            continue
        cells.append(c)
    nb['cells'] = cells
    return nb

# ---------------------------------------------------------------------------------------------------------------
# 3. nbconvert with a page template: sidebar, title, no CDN scripts

PAGE_TEMPLATE = r"""{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block extra_css %}<link rel="stylesheet" href="site.css"><link rel="stylesheet" href="styles.css">{% endblock extra_css %}
{%- block body_header -%}
<body class="jp-Notebook" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ resources.site_nav }}
<main id="quarto-document-content">
<header id="title-block-header"><h1 class="title">{{ resources.page_title | escape }}</h1>
{%- if resources.page_description %}<p class="description">{{ resources.page_description }}</p>{% endif -%}
</header>
{%- endblock body_header -%}
{% block body_footer %}
{{ resources.page_pager }}
</main>
</body>
{% endblock body_footer %}
"""

SITE_CSS = """
body { display: flex; margin: 0; }
nav.sidebar { flex: 0 0 15rem; padding: 1rem; border-right: 1px solid #ddd; position: sticky; top: 0;
  height: 100vh; overflow-y: auto; box-sizing: border-box; font-family: system-ui, sans-serif; font-size: 0.9rem; }
nav.sidebar .site-title { font-weight: bold; font-size: 1.1rem; display: block; margin-bottom: .5rem; }
nav.sidebar ul { list-style: none; padding: 0; }
nav.sidebar li { margin: .25rem 0; }
nav.sidebar a { text-decoration: none; color: #2780e3; }
nav.sidebar a.active { font-weight: bold; color: #000; }
main { flex: 1; min-width: 0; padding: 1rem 2rem; }
nav.toc { flex: 0 0 13rem; padding: 1rem; position: sticky; top: 0; height: 100vh; overflow-y: auto;
  box-sizing: border-box; font-family: system-ui, sans-serif; font-size: 0.85rem; border-left: 1px solid #eee; }
nav.toc h2 { font-size: 0.95rem; margin-top: 0; }
nav.toc ul { list-style: none; padding: 0; }
nav.toc a { text-decoration: none; color: #2780e3; }
header#title-block-header .description { color: #555; font-size: 1.1rem; }
nav.pager { display: flex; justify-content: space-between; margin: 2rem 0; }
.jp-OutputArea-output img { max-width: 100%; height: auto; }
/* wide code and tables scroll sideways inside the page instead of being cut off */
.jp-InputArea-editor, .jp-OutputArea-output pre, .highlight pre { overflow-x: auto; }
.jp-OutputArea-output { overflow-x: auto; }
figcaption.figure-caption { color: #444; font-size: 0.9rem; font-style: italic; margin: 0.25rem 0 1rem; }
"""


def inline_code(text: str) -> str:
    "Escape a front-matter description, keeping its `code` spans as code."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(text))


def site_nav(pages: list[dict], current: str, title: str, repo_url: str) -> str:
    active = ' class="active"'
    items = ''.join(f'<li><a href="{p["href"]}"{active if p["href"] == current else ""}>'
                    f'{html.escape(p["title"])}</a></li>' for p in pages)
    repo = f'<a class="repo" href="{html.escape(repo_url)}">source on GitHub</a>' if repo_url else ''
    return f'<nav class="sidebar"><a class="site-title" href="index.html">{html.escape(title)}</a><ul>{items}</ul>{repo}</nav>'


def pager(pages: list[dict], i: int) -> str:
    prev = f'<a class="prev" href="{pages[i-1]["href"]}">← {html.escape(pages[i-1]["title"])}</a>' if i > 0 else '<span></span>'
    nxt = f'<a class="next" href="{pages[i+1]["href"]}">{html.escape(pages[i+1]["title"])} →</a>' if i + 1 < len(pages) else '<span></span>'
    return f'<nav class="pager">{prev}{nxt}</nav>'

# ---------------------------------------------------------------------------------------------------------------
# 4. After rendering: pandoc heading ids, links between pages, LaTeX → MathML

_HEADING = re.compile(r'<h([1-6]) id="([^"]*)">(.*?)</h\1>', re.S)
_TAG = re.compile(r'<[^>]+>')


def pandoc_id(text: str) -> str:
    "Pandoc's auto identifier (what Quarto gives a heading and what nbdev's doc links point to)."
    s = html.unescape(_TAG.sub('', text)).replace('¶', '').strip().lower()
    s = re.sub(r'[^\w\s.-]', '', s)
    s = re.sub(r'\s+', '-', s)
    s = re.sub(r'^[^a-z]+', '', s)
    return s or 'section'


def fix_headings(page: str) -> str:
    seen: dict[str, int] = {}
    def sub(m):
        level, old, inner = m.groups()
        new = pandoc_id(inner)
        n = seen.get(new, 0); seen[new] = n + 1
        if n: new = f'{new}-{n}'
        inner = inner.replace(f'href="#{old}"', f'href="#{new}"')
        return f'<h{level} id="{new}">{inner}</h{level}>'
    return _HEADING.sub(sub, page)


def page_toc(page: str) -> str:
    "The page's sections (h2) as a table of contents, as Quarto's `toc: true` shows beside the page."
    items = [(i, html.unescape(_TAG.sub('', t)).replace('¶', '').strip())
             for lvl, i, t in _HEADING.findall(page) if lvl == '2']
    if not items: return ''
    lis = ''.join(f'<li><a href="#{html.escape(i)}">{html.escape(t)}</a></li>' for i, t in items)
    return f'<nav class="toc"><h2>On this page</h2><ul>{lis}</ul></nav>'


def rewrite_links(page: str, names: dict[str, str], site_url: str) -> str:
    "Links to notebooks (`02_positional.ipynb`) and to the published site become links to the rendered pages."
    def sub(m):
        url = html.unescape(m[1])
        if site_url and url.startswith(site_url + '/'): url = url[len(site_url) + 1:]
        path, _, anchor = url.partition('#')
        if '://' not in path and path.endswith('.ipynb') and Path(path).name in names:
            path = names[Path(path).name]
        return f'href="{html.escape(path + ("#" + anchor if anchor else ""), quote=True)}"'
    return re.sub(r'href="([^"]*)"', sub, page)


_MATH = re.compile(r'\$\$(.+?)\$\$|(?<![\\$\w])\$([^$\n]+?)\$(?!\w)', re.S)


def render_math(page: str) -> str:
    "LaTeX between $ / $$ in the page text (not in code) becomes MathML, which Chromium renders without scripts."
    import latex2mathml.converter as l2m
    def conv(m):
        tex, display = (m[1], 'block') if m[1] is not None else (m[2], 'inline')
        try: return l2m.convert(html.unescape(tex).strip(), display=display)
        except Exception: return m[0]
    # only text between tags: not code, scripts, styles, nor attributes (an iframe's srcdoc holds a whole page)
    parts = re.split(r'(<pre[\s>].*?</pre>|<code[\s>].*?</code>|<script[\s>].*?</script>|<style[\s>].*?</style>|<[^>]*>)',
                     page, flags=re.S)
    return ''.join(p if i % 2 else _MATH.sub(conv, p) for i, p in enumerate(parts))

# ---------------------------------------------------------------------------------------------------------------


def render_site(proc: Path, order: list[str], out: Path, cfg: dict) -> list[dict]:
    "Render every processed notebook in `order` into `out`; returns the pages (source, href, title)."
    from nbconvert import HTMLExporter
    from jinja2 import DictLoader
    import nbformat
    notebooks, pages = {}, []
    for name in order:
        p = proc/name
        if not p.exists(): continue
        raw = json.loads(p.read_text(encoding='utf-8'))
        for c in raw['cells']:  # nbdev leaves its own keys (has_sd, ...) on cells
            for k in set(c) - {'cell_type', 'id', 'metadata', 'source', 'outputs', 'execution_count', 'attachments'}: del c[k]
        nb = nbformat.reads(json.dumps(raw), as_version=4)  # multi-line strings joined
        fm = frontmatter(nb)
        href = fm.get('output-file') or re.sub(r'^\d+[a-zA-Z0-9]*_', '', name.lower()).replace('.ipynb', '.html')
        title = fm.get('title') or Path(name).stem
        notebooks[name] = nb
        pages.append(dict(source=name, href=href, title=str(title), description=str(fm.get('description', '') or '')))
    names = {p['source']: p['href'] for p in pages}
    site_url = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
    from traitlets.config import Config
    config = Config({'TagRemovePreprocessor': {'enabled': True, 'remove_input_tags': {'remove_input'}}})
    exporter = HTMLExporter(config=config, template_name='lab', template_file='docs_page.html.j2',
                            extra_loaders=[DictLoader({'docs_page.html.j2': PAGE_TEMPLATE})],
                            require_js_url='', mathjax_url='', exclude_input_prompt=True, exclude_output_prompt=True)
    out.mkdir(parents=True, exist_ok=True)
    for i, page in enumerate(pages):
        nb = prepare(notebooks[page['source']])
        res = dict(site_nav=site_nav(pages, page['href'], cfg.get('title', 'docs'), cfg.get('git_url', '')),
                   page_title=page['title'], page_description=inline_code(page['description']), page_pager=pager(pages, i),
                   metadata=dict(name=page['title']))
        body, _ = exporter.from_notebook_node(nb, resources=res)
        body = fix_headings(body)
        body = body.replace('</main>\n</body>', f'</main>\n{page_toc(body)}\n</body>', 1)
        body = render_math(rewrite_links(body, names, site_url))
        (out/page['href']).write_text(body, encoding='utf-8')
    (out/'site.css').write_text(SITE_CSS)
    styles = proc/'styles.css'
    shutil.copy(styles if styles.exists() else ROOT/'nbs'/'styles.css', out/'styles.css')
    (out/'pages.json').write_text(json.dumps(pages, indent=1))
    return pages


def read_settings() -> dict:
    import configparser
    cp = configparser.ConfigParser(); cp.read(ROOT/'settings.ini')
    return dict(cp['DEFAULT'])


def build(nbs: Path = ROOT/'nbs', out: Path = ROOT/'_docs', only: list[str] | None = None,
          n_workers: int = 2) -> tuple[list[dict], dict[str, str]]:
    "Process and render the notebooks in `nbs` into `out`; returns (pages, {notebook: nbdev processing error})."
    with tempfile.TemporaryDirectory(prefix='docs-stage-') as d:
        stage = stage_project(Path(nbs), Path(d))
        if only:
            for p in (stage/'nbs').glob('*.ipynb'):
                if p.stem not in only and p.name not in only: p.unlink()
        errors = proc_nbs(stage, n_workers)
        if out.exists(): shutil.rmtree(out)
        pages = render_site(stage/'_proc', sidebar_order(stage), out, read_settings())
    (out/'errors.json').write_text(json.dumps(errors, indent=1))
    return pages, errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--nbs', type=Path, default=ROOT/'nbs', help='notebook folder')
    ap.add_argument('--out', type=Path, default=ROOT/'_docs', help='output folder (replaced)')
    ap.add_argument('--only', nargs='*', help='only these notebooks (names with or without .ipynb)')
    ap.add_argument('--n_workers', type=int, default=2)
    a = ap.parse_args(argv)
    pages, errors = build(a.nbs, a.out, a.only, a.n_workers)
    for name, err in errors.items(): print(f'nbdev_proc_nbs failed on {name}:\n{err}\n', file=sys.stderr)
    print(f'{len(pages)} pages in {a.out}' + (f'; {len(errors)} notebooks failed processing' if errors else ''))
    return 1 if errors else 0


if __name__ == '__main__':
    sys.exit(main())
