"""The README's set-up commands are the ones CI runs, and every link in it resolves."""

import pathlib
import re
import runpy

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_readme_opens_with_the_two_setup_commands():
    main, tests = _commands()[:2]
    assert main.endswith("embeddings-jax word2vec") and "pip install -e ." in main
    assert "pytest" in tests and '".[dev]"' in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _commands()[1] in ci.splitlines()


def test_readme_links_resolve():
    text = (ROOT / "README.md").read_text()
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target


def test_readme_word2vec_example_runs(tmp_path, monkeypatch):
    """The Python example under "word2vec from Python" runs as written."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## word2vec from Python") :]
    code = re.search(r"```python\n(.+?)\n```", section, re.DOTALL).group(1)
    (tmp_path / "example.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(tmp_path / "example.py"))
    assert (tmp_path / "w2v" / "word2vec.json").exists()
