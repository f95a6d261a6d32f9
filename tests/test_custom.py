"""Your own data (location_tying.custom): rasters and tables read, checked and sampled; embeddings written and read back.
Small synthetic inputs; every check is against an independent reference (the values written, pyproj, a direct embed)."""
import json, subprocess, sys
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from location_tying import custom
from location_tying.checkpoint import LocationEmbedder, save_encoder
from location_tying.location_encoder import make_location_encoder

OPTS = dict(positional='sh', network='siren', degree=4, hidden=16, layers=1, dim=8)

@pytest.fixture(scope='module')
def embedder():
    torch.manual_seed(0)
    return LocationEmbedder(make_location_encoder(**OPTS), {'location_encoder': OPTS})

def grid(lon, lat, bands=2, seed=0):
    "A (band, lat, lon) raster with distinct values per cell and band."
    v = np.random.default_rng(seed).normal(size=(bands, len(lat), len(lon))).astype(np.float32)
    return xr.DataArray(v, dims=('band', 'lat', 'lon'), coords=dict(band=np.arange(bands), lat=lat, lon=lon))

def test_importing_custom_pulls_no_file_format_package():
    code = "import sys, location_tying.custom; print([m for m in ('h5netcdf', 'rioxarray', 'rasterio', 'pyarrow', 'zarr') if m in sys.modules])"
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'

def test_netcdf_raster_round_trip_and_pixel_values(tmp_path):
    da = grid(np.arange(-20, 20, 1.0) + 0.5, np.arange(60, 30, -1.0) - 0.5)  # lat north→south, as many files store it
    da.to_dataset(name='v').to_netcdf(tmp_path / 'v.nc', engine='h5netcdf')
    m = custom.load_modality_file(tmp_path / 'v.nc', register=False)
    s = m.sample(300, seed=0)
    ll = s.lonlat.astype(np.float64)
    want = da.sel(lon=xr.DataArray(ll[:, 0]), lat=xr.DataArray(ll[:, 1]), method='nearest').values.T
    np.testing.assert_allclose(s.x.numpy(), want)
    assert m.name == 'v' and (ll[:, 0] >= -20).all() and (ll[:, 0] <= 20).all() and (ll[:, 1] >= 30).all() and (ll[:, 1] <= 60).all()

def test_nodata_cells_are_never_sampled_and_patches_fill_them():
    da = grid(np.arange(0, 10, 1.0) + 0.5, np.arange(0, 10, 1.0) + 0.5, bands=1)
    da[0, :, :5] = np.nan  # the western half has no data
    m = custom.from_dataarray(da, 'half', input='patches')
    s = m.sample(200, seed=1, patch_px=4)
    assert (s.lonlat[:, 0] >= 5).all() and np.isfinite(s.x.numpy()).all() and s.x.shape == (200, 1, 4, 4)

def test_projected_geotiff_is_reprojected(tmp_path):
    import pyproj
    x, y = np.arange(4e5, 6e5, 2e4) + 1e4, np.arange(5.2e6, 5.0e6, -2e4) - 1e4
    da = xr.DataArray(np.ones((1, len(y), len(x)), np.float32), dims=('band', 'y', 'x'), coords=dict(band=[1], y=y, x=x))
    da.rio.write_crs('EPSG:32631').rio.to_raster(tmp_path / 'utm.tif')
    m = custom.load_modality_file(tmp_path / 'utm.tif', register=False)
    lon, lat = pyproj.Transformer.from_crs('EPSG:32631', 'EPSG:4326', always_xy=True).transform(5e5, 5.1e6)
    ll = m.sample(500, seed=0).lonlat
    assert abs(ll[:, 0].mean() - lon) < 0.3 and abs(ll[:, 1].mean() - lat) < 0.3

def test_projected_raster_without_crs_is_refused(tmp_path):
    da = xr.DataArray(np.ones((3, 4), np.float32), dims=('y', 'x'), coords=dict(y=[5.2e6, 5.1e6, 5.0e6], x=[4e5, 5e5, 6e5, 7e5]))
    da.to_dataset(name='v').to_netcdf(tmp_path / 'utm.nc', engine='h5netcdf')
    with pytest.raises(ValueError, match='has no CRS information and its x/y coordinates .* look[s]? projected'):
        custom.load_modality_file(tmp_path / 'utm.nc', register=False)

def test_raster_in_0_360_is_refused():
    with pytest.raises(ValueError, match=r'run up to 359.5 \(> 180\), so they look like 0–360'):
        custom.from_dataarray(grid(np.arange(0, 360, 1.0) + 0.5, np.arange(10.0) + 0.5), 'wide')

def survey(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({'site': [f's{i}' for i in range(n)], 'lon': rng.uniform(-10, 10, n), 'lat': rng.uniform(40, 50, n), 'ph': rng.normal(6, 1, n)})

@pytest.mark.parametrize('fault, says', [
    (lambda d: d.iloc[:0], 'is empty: it has the columns site, lon, lat, ph but no rows'),
    (lambda d: d.drop(columns='lat'), 'has no latitude column (looked for lat, latitude, y'),
    (lambda d: d.assign(lon=d.lon % 360 + 180), 'so they look like 0–360, but −180–180 is expected'),
    (lambda d: d.drop(columns='ph'), 'has no numeric feature column besides lon and lat'),
])
def test_bad_tables_are_refused_in_one_line(tmp_path, fault, says):
    fault(survey()).to_csv(tmp_path / 't.csv', index=False)
    with pytest.raises(ValueError) as e: custom.from_table(tmp_path / 't.csv')
    assert says in str(e.value) and '\n' not in str(e.value)

def test_table_pools_are_disjoint_and_parquet_reads_the_same(tmp_path):
    d = survey(100)
    d.to_parquet(tmp_path / 't.parquet')
    m = custom.from_table(tmp_path / 't.parquet', features=['ph'])
    assert not set(m.pools['train']) & set(m.pools['validation']) and len(m.pools['validation']) == 10
    v = m.sample(50, seed=0, split='validation')
    assert len(v) == 10  # only the held-out tenth
    got = pd.DataFrame(v.lonlat, columns=['lon', 'lat']).merge(d.astype({'lon': np.float32, 'lat': np.float32}), on=['lon', 'lat'])
    np.testing.assert_allclose(np.sort(v.x.numpy()[:, 0]), np.sort(got.ph.to_numpy(np.float32)))

def test_grid_netcdf_holds_direct_embeddings_with_lonlat_coords(tmp_path, embedder):
    out = custom.embed_grid(embedder, tmp_path / 'g.nc', 5, region='-20,30,40,70', chunk_points=25, progress=False)
    ds = xr.open_dataset(out, engine='h5netcdf', decode_coords='all')
    assert ds.embeddings.dims == ('embedding', 'lat', 'lon') and ds.embeddings.shape == (8, 8, 12)
    lon, lat = np.meshgrid(ds.lon.values, ds.lat.values)
    want = embedder.embed(np.stack([lon.ravel(), lat.ravel()], 1)).T.reshape(8, 8, 12)
    np.testing.assert_allclose(ds.embeddings.values, want, rtol=1e-5, atol=1e-6)
    assert ds.rio.crs.to_epsg() == 4326 and json.loads(ds.attrs['encoder_config'])['location_encoder'] == OPTS

def test_grid_zarr_when_zarr_is_installed(tmp_path, embedder):
    pytest.importorskip('zarr')
    out = custom.embed_grid(embedder, tmp_path / 'g.zarr', 10, region='-20,30,40,70', chunk_points=12, progress=False)
    ds = xr.open_zarr(out)
    ref = xr.open_dataset(custom.embed_grid(embedder, tmp_path / 'g.nc', 10, region='-20,30,40,70', progress=False), engine='h5netcdf')
    np.testing.assert_allclose(ds.embeddings.values, ref.embeddings.values, rtol=1e-6)

def test_points_csv_round_trip(tmp_path, embedder):
    d = survey(30)
    d.to_csv(tmp_path / 'p.csv', index=False)
    back = pd.read_csv(custom.embed_table(embedder, tmp_path / 'p.csv', tmp_path / 'out.csv', chunk_rows=7, progress=False))
    pd.testing.assert_frame_equal(back[d.columns], pd.read_csv(tmp_path / 'p.csv'))
    np.testing.assert_allclose(back[[f'emb_{i}' for i in range(8)]].to_numpy(), embedder.embed(d[['lon', 'lat']].to_numpy()), rtol=1e-5, atol=1e-6)

@pytest.mark.parametrize('region, says', [('30,35,-10,70', 'west 30 must be less than east -10'), ('-10,35,30,95', 'latitudes must lie in −90..90'),
                                          ('-200,35,30,60', 'longitudes must lie in −180..180'), ('-10,35,30', 'expected four numbers')])
def test_bad_regions(region, says):
    with pytest.raises(ValueError, match=says): custom.check_region(region)

def test_options_of_the_other_kind_of_file_are_refused(tmp_path):
    survey().to_csv(tmp_path / 't.csv', index=False)
    grid(np.arange(3.0) + 0.5, np.arange(3.0) + 0.5).to_dataset(name='v').to_netcdf(tmp_path / 'r.nc', engine='h5netcdf')
    with pytest.raises(ValueError, match='is a table: input= and variable= are for rasters'):
        custom.load_modality_file(tmp_path / 't.csv', input='patches', register=False)
    with pytest.raises(ValueError, match='is a raster: features= are for tables'):
        custom.load_modality_file(tmp_path / 'r.nc', features=['ph'], register=False)

def test_gdal_reads_the_grid_as_bands_with_crs_and_bounds(tmp_path, embedder):
    "What a GIS tool sees: GDAL's netCDF driver (through rasterio) opens the file as one band per dimension, in WGS 84."
    rasterio = pytest.importorskip('rasterio')
    out = custom.embed_grid(embedder, tmp_path / 'g.nc', 5, region='-20,30,40,70', progress=False)
    with rasterio.open(f'netcdf:{out}:embeddings') as r:
        assert (r.count, r.width, r.height) == (8, 12, 8) and r.crs.to_epsg() == 4326
        assert tuple(r.bounds) == (-20.0, 30.0, 40.0, 70.0)
        row, col = r.index(2.5, 47.5)
        np.testing.assert_allclose(r.read()[:, row, col], embedder.embed([[2.5, 47.5]])[0], rtol=1e-5, atol=1e-6)
