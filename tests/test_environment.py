"""What benchmarks and results record about the machine: CPU model, ISA (and XLA's cap), git commit."""

from embeddings_jax.train import environment


def test_cpu_model_and_isa_are_named(monkeypatch):
    assert environment.cpu_model()
    widest = environment.isa()
    assert widest and "capped" not in widest
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_cpu_max_isa=AVX2")
    assert environment.isa() == f"{widest} (XLA capped at AVX2)"


def test_git_sha_of_a_folder_outside_git_is_unknown(tmp_path):
    assert environment.git_sha(tmp_path) == "unknown"
    assert environment.git_sha() != ""


def test_steal_fraction_is_a_share_or_unknown():
    from embeddings_jax.train.environment import cpu_times, steal_fraction

    assert steal_fraction(None) is None
    start = cpu_times()
    if start is None:  # not Linux: nothing to read
        return
    assert 0 <= start[0] <= start[1]
    sum(i * i for i in range(200_000))  # let some CPU time pass
    share = steal_fraction(start)
    assert share is None or 0.0 <= share <= 1.0


def test_the_wheel_installs_only_the_library(tmp_path):
    """`pip install .` puts `embeddings_jax` into site-packages and no top-level `experiments` or
    `benchmarks` (they stay in the checkout, where the CLI finds them)."""
    import pathlib
    import subprocess
    import sys
    import zipfile

    root = pathlib.Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path), str(root)], check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("embeddings_jax-*.whl")
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"embeddings_jax"}, tops
