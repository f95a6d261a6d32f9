"The `location-tying` command as a user runs it: a real process, its exit status and its messages."
import importlib.util, subprocess, sys, shutil
from pathlib import Path
import numpy as np
import pandas as pd
import pytest
import xarray as xr

def run(*args, **kw):
    exe = shutil.which('location-tying') or str(Path(sys.executable).parent / 'location-tying')
    return subprocess.run([exe, *args], capture_output=True, text=True, **kw)

def test_help_lists_commands():
    out = run('--help')
    assert out.returncode == 0
    assert 'data' in out.stdout

def test_module_entry_point_matches_script():
    out = subprocess.run([sys.executable, '-m', 'location_tying.cli', '--help'], capture_output=True, text=True)
    assert out.returncode == 0 and 'data' in out.stdout

def test_unknown_command_fails_with_usage():
    out = run('frobnicate')
    assert out.returncode == 2 and 'invalid choice' in out.stderr

def test_data_command_writes_maps(tmp_path):
    out = run('data', '--out', str(tmp_path), '--n', '200')
    assert out.returncode == 0, out.stderr
    maps = sorted(p.name for p in (tmp_path / 'maps').glob('*.png'))
    assert len(maps) == 8, maps
    assert (tmp_path / 'summary.csv').read_text().count('\n') == 9

# --- your own modalities and embeddings out (location_tying.custom) ---

TINY = ['--n-per-modality', '256', '--degree', '4', '--hidden', '16', '--layers', '1', '--dim', '8', '--batch-size', '64',
        '--steps', '4', '--val-n', '16']

def one_error_line(out, says):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], out.stderr

@pytest.fixture(scope='module')
def user_files(tmp_path_factory):
    "A small NetCDF raster (two bands over Europe) and a small CSV table (lon, lat, two features)."
    d = tmp_path_factory.mktemp('user')
    rng = np.random.default_rng(0)
    lon, lat = np.arange(-10, 30, 0.5) + 0.25, np.arange(70, 35, -0.5) - 0.25
    xr.DataArray(rng.normal(size=(len(lat), len(lon), 2)).astype(np.float32), dims=('lat', 'lon', 'band'),
                 coords=dict(lat=lat, lon=lon)).to_dataset(name='v').to_netcdf(d / 'rain.nc', engine='h5netcdf')
    n = 200
    pd.DataFrame({'longitude': rng.uniform(-10, 30, n), 'latitude': rng.uniform(35, 70, n), 'ph': rng.normal(6, 1, n),
                  'clay': rng.uniform(0, 60, n)}).to_csv(d / 'soil.csv', index=False)
    return d

@pytest.fixture(scope='module')
def custom_run(user_files):
    "MELT on the custom NetCDF (as patches) and the custom CSV, from the command line."
    out = user_files / 'run'
    res = run('pretrain', '--method', 'melt', '--modality', f'{user_files}/rain.nc,input=patches', '--modality',
              f'soil={user_files}/soil.csv,features=ph+clay', '--patch-px', '4', '--out', str(out), *TINY)
    assert res.returncode == 0, res.stderr
    return out, res

def test_custom_netcdf_and_csv_modalities_pretrain_from_the_cli(custom_run):
    out, res = custom_run
    assert 'melt on rain,soil' in res.stdout
    hist = pd.read_csv(out / 'history.csv')
    assert len(hist) == 4 and hist.rows_rain.sum() == hist.rows_soil.sum() == 4 * 32 and np.isfinite(hist.loss).all()
    assert set(pd.read_csv(out / 'validation.csv').modality) == {'rain', 'soil'}

def test_custom_csv_modality_trains_alone_with_satclip(user_files, tmp_path):
    res = run('pretrain', '--method', 'satclip', '--modality', str(user_files / 'soil.csv'), '--out', str(tmp_path), *TINY)
    assert res.returncode == 0, res.stderr
    assert 'satclip on soil' in res.stdout

def test_embed_grid_025_opens_with_lonlat_coords(custom_run, tmp_path):
    from location_tying.checkpoint import load_encoder
    res = run('embed', '--encoder', str(custom_run[0]), '--grid', '0.25', '--out', str(tmp_path / 'g.nc'))
    assert res.returncode == 0, res.stderr
    assert '1,036,800 points' in res.stdout
    ds = xr.open_dataset(tmp_path / 'g.nc')
    assert ds.embeddings.dims == ('embedding', 'lat', 'lon') and ds.embeddings.shape == (8, 720, 1440)
    assert ds.lon.attrs['units'] == 'degrees_east' and ds.lat.attrs['units'] == 'degrees_north'
    assert float(ds.lon[0]) == -179.875 and float(ds.lat[0]) == 89.875
    want = load_encoder(custom_run[0]).embed([[2.375, 48.875], [-179.875, -89.875]])
    got = np.stack([ds.embeddings.sel(lon=2.375, lat=48.875).values, ds.embeddings.sel(lon=-179.875, lat=-89.875).values])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)

def test_embed_points_writes_input_columns_and_embeddings(custom_run, user_files, tmp_path):
    res = run('embed', '--encoder', str(custom_run[0]), '--points', str(user_files / 'soil.csv'), '--out', str(tmp_path / 'p.parquet'), '--chunk', '64')
    assert res.returncode == 0, res.stderr
    back, src = pd.read_parquet(tmp_path / 'p.parquet'), pd.read_csv(user_files / 'soil.csv')
    pd.testing.assert_frame_equal(back[src.columns], src)
    assert list(back.columns[4:]) == [f'emb_{i}' for i in range(8)]

def test_projected_raster_without_crs_is_one_line(user_files, tmp_path):
    xr.DataArray(np.ones((3, 4), np.float32), dims=('y', 'x'), coords=dict(y=[5.2e6, 5.1e6, 5.0e6], x=[4e5, 5e5, 6e5, 7e5])
                 ).to_dataset(name='v').to_netcdf(tmp_path / 'utm.nc', engine='h5netcdf')
    one_error_line(run('pretrain', '--method', 'satclip', '--modality', str(tmp_path / 'utm.nc'), '--out', str(tmp_path / 'r'), *TINY),
                   'has no CRS information and its x/y coordinates')

@pytest.mark.parametrize('fault, says', [
    (lambda d: d.drop(columns='latitude'), 'has no latitude column'),
    (lambda d: d.assign(longitude=d.longitude % 360 + 180), 'look like 0–360, but −180–180 is expected'),
    (lambda d: d.iloc[:0], 'is empty'),
])
def test_bad_tables_are_one_line_for_pretrain_and_embed(custom_run, user_files, tmp_path, fault, says):
    fault(pd.read_csv(user_files / 'soil.csv')).to_csv(tmp_path / 'bad.csv', index=False)
    res = run('pretrain', '--method', 'satclip', '--modality', str(tmp_path / 'bad.csv'), '--out', str(tmp_path / 'r'), *TINY)
    one_error_line(res, says); assert f'--modality {tmp_path}/bad.csv: ' in res.stderr
    one_error_line(run('embed', '--encoder', str(custom_run[0]), '--points', str(tmp_path / 'bad.csv'), '--out', str(tmp_path / 'o.csv')), says)

@pytest.mark.parametrize('region, says', [('30,35,-10,60', 'west 30 must be less than east -10'), ('-10,35,30,95', 'latitudes must lie in −90..90'),
                                          ('-190,35,30,60', 'longitudes must lie in −180..180')])
def test_bad_regions_are_one_line(custom_run, tmp_path, region, says):
    one_error_line(run('embed', '--encoder', str(custom_run[0]), '--grid', '1', '--region', region, '--out', str(tmp_path / 'g.nc')), says)
    assert not (tmp_path / 'g.nc').exists()

def test_embed_by_shipped_name(tmp_path):
    "`--encoder NAME` loads the encoder shipped with the package; the grid equals `load_encoder(NAME)` at the cell centres."
    from location_tying.checkpoint import load_encoder
    res = run('embed', '--encoder', 'melt-4', '--grid', '10', '--region', '0,40,20,60', '--out', str(tmp_path / 'g.nc'))
    assert res.returncode == 0, res.stderr
    ds = xr.open_dataset(tmp_path / 'g.nc', engine='h5netcdf')
    pts = np.array([[5.0, 45.0], [15.0, 55.0]])
    got = np.stack([ds.embeddings.sel(lon=x, lat=y).values for x, y in pts])
    np.testing.assert_allclose(got, load_encoder('melt-4').embed(pts), atol=1e-5)

def test_embed_by_unknown_name_lists_the_shipped_ones(tmp_path):
    from location_tying.pretrained_encoders import pretrained
    res = run('embed', '--encoder', 'melt-9', '--grid', '1', '--out', str(tmp_path / 'g.nc'))
    one_error_line(res, "unknown encoder 'melt-9'")
    assert all(f'{n} (' in res.stderr for n in pretrained()), res.stderr

def test_embed_zarr_without_zarr_names_the_package(custom_run, tmp_path):
    if importlib.util.find_spec('zarr') is not None: pytest.skip('zarr is installed: tests/test_custom.py checks the Zarr output')
    one_error_line(run('embed', '--encoder', str(custom_run[0]), '--grid', '5', '--out', str(tmp_path / 'g.zarr')), 'writing Zarr needs the zarr package: pip install zarr')
    assert not list(tmp_path.iterdir())

# --- the encoder study (location_tying.study) ---

@pytest.mark.parametrize('argv, says', [
    (['--encoders', 'transformer'], "--encoders: unknown 'transformer'; choose from default,"),
    (['--encoders', 'hashgrid,hashgrid'], '--encoders: a name is given twice'),
    (['--modality-sets', 'melt-9'], "--modality-sets: unknown 'melt-9'"),
    (['--seeds', '1,1'], '--seeds: give distinct integers >= 0'),
    (['--scales', '4'], '--scales goes with --volume'),
    (['--volume', '--scales', '0'], '--scales: give distinct integers >= 1'),
])
def test_study_refuses_bad_choices_before_any_work(tmp_path, argv, says):
    one_error_line(run('study', '--out', str(tmp_path / 'study'), *argv), says)
    assert not (tmp_path / 'study').exists()

def test_study_help_names_both_arms():
    out = run('study', '--help')
    assert out.returncode == 0 and '--volume' in out.stdout and '--quick' in out.stdout and '--encoders' in out.stdout
