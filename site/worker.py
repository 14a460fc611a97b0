# Entry point of samtab's Pyodide worker (started by app.js through PyScript). The work is in pyapp.web.worker.
# PyScript delivers the page's messages to `xworker.onmessage`, looked up among this module's globals.
from polyscript import xworker

from pyapp.web.worker import start

start(xworker)
