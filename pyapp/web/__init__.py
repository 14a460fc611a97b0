"""The browser edge: the only part of pyapp that imports js or pyodide (Pyodide only)."""
