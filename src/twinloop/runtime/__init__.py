"""The composition root: settings, wiring, the event bus and the one service layer the faces call."""
