"""The DVC pipeline around the `cnn` core: download -> preprocess -> train -> evaluate."""
