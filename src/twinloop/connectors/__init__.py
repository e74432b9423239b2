"""The only code that speaks a wire protocol: MQTT, OPC UA, HTTP, files. Bytes in, bytes out."""
