"The core stays light: importing the library must not pull optional or heavy packages."
import subprocess, sys, json

HEAVY = ['umap', 'ipywidgets', 'folium', 'offlinefolium', 'sentence_transformers', 'transformers', 'matplotlib.pyplot', 'playwright']
CORE = ['location_tying', 'location_tying.coords', 'location_tying.data', 'location_tying.positional', 'location_tying.networks',
        'location_tying.location_encoder', 'location_tying.zoo', 'location_tying.modality_encoders', 'location_tying.loss', 'location_tying.melt',
        'location_tying.salt', 'location_tying.checkpoint', 'location_tying.train', 'location_tying.probes', 'location_tying.viz', 'location_tying.distributed', 'location_tying.pretrained_encoders']

def _loaded_after(module):
    code = (f"import importlib, importlib.util, sys, json\n"
            f"if importlib.util.find_spec({module!r}) is None: print('null'); raise SystemExit\n"
            f"importlib.import_module({module!r}); print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def test_core_modules_do_not_import_heavy_packages():
    for module in CORE:
        loaded = _loaded_after(module)
        if loaded is None: continue  # module not built yet
        bad = [h for h in HEAVY if h in loaded]
        assert not bad, f'importing {module} pulled {bad}'

def test_top_level_exposes_load_encoder_lazily():
    code = "import location_tying, sys; assert 'location_tying.checkpoint' not in sys.modules; f = location_tying.load_encoder; print(f.__module__)"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == 'location_tying.checkpoint'
