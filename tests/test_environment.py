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
