"""The browser edge: the only part of pyapp that imports js, pyodide or pyscript (Pyodide only)."""
