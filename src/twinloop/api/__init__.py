"""The REST and WebSocket face: thin FastAPI routers over the runtime's service layer."""
