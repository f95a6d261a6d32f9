"The project stands on its own: no notebook, README or module points readers at design notes that ship outside it."
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r'\bFACTS\b|DESIGN\.md|STYLE\.md|bad-input-matrix|\.\./shared\b')

def _hits(paths) -> list[tuple[str, int]]:
    "(file name, line number) of every line that names a file outside the project."
    return [(p.name, i) for p in paths for i, line in enumerate(p.read_text(encoding='utf-8').splitlines(), 1) if OUTSIDE.search(line)]

def test_no_reference_to_files_outside_the_project():
    paths = [*sorted((ROOT/'nbs').glob('*.ipynb')), ROOT/'README.md', *sorted((ROOT/'location_tying').glob('*.py'))]
    assert len(paths) > 40
    assert _hits(paths) == []

def test_the_pattern_catches_each_kind(tmp_path):
    p = tmp_path/'x.md'
    p.write_text('see FACTS.md\nsee ../shared/DESIGN.md\nTEST-ARTIFACTS are fine\nthe STYLE.md rules\nbad-input-matrix.md\n')
    assert _hits([p]) == [('x.md', 1), ('x.md', 2), ('x.md', 4), ('x.md', 5)]
