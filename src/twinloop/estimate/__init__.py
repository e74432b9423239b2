"""State and parameter estimation over a PhysicsModel, vectorized across all twins of one type."""
