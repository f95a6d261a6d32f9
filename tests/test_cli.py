"The `location-tying` command as a user runs it: a real process, its exit status and its messages."
import subprocess, sys, shutil
from pathlib import Path

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
