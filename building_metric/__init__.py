__version__ = "0.0.1"

import warnings as _warnings
# fastai compiles a few layers with torch.jit.script at import, which torch now deprecates: a warning
# users cannot act on, which would otherwise precede every console script's output.
_warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
