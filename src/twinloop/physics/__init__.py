"""Physics models: declarations plus pure, vectorized equations (see `PhysicsModel`)."""
