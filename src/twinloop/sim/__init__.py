"""Plant simulators: the outside world for demos, tests and training data, reached only over the wire."""
