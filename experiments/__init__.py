"""Paper-style experiments. Each module defines ``get_config(arg)`` and ``run(config, workdir)``."""
