"""Reference implementations the tests and the benchmark compare cnn with (notebook.py: the notebook's code)."""
