"""samtab's command-line tools, installed as the package `samtab_tools` (pyproject.toml maps it to tools/).

Each tool runs as `python tools/NAME.py` and, for those with a `main`, as an installed command
(`samtab-encode`, ...: pyproject.toml's [project.scripts]). Tools import one another as
`from samtab_tools import files` and the core as `pyapp`, both from the installed project.
"""
