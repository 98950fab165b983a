# Loaded for every kernel from the environment's etc/ipython: %%athena is always available.
c = get_config()  # type: ignore[name-defined]  # noqa: F821
c.InteractiveShellApp.extensions = ["kumohub.magics"]
