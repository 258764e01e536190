"""The DVC pipeline around the `cnn` core: download -> preprocess -> train -> evaluate.

Importing the package pins the canonical numerics before numpy loads (pipeline.numerics).
"""

from pipeline import numerics as numerics
