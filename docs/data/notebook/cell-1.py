import builtins
import os
import tempfile
from pathlib import Path

import numpy as np

import rankme

# A notebook's display (IPython puts it in the builtins), or text under `python`.
display = getattr(builtins, "display", print)

os.chdir(tempfile.mkdtemp(prefix="rankme-notebook-"))  # a fresh folder