"""samtab's Python: a pure core (CPython and Pyodide alike) and, in pyapp.web, the browser edge."""
