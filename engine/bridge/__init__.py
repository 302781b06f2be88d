"""Labels to an MQTT broker (`engine bridge --to mqtt://HOST:PORT/TOPIC`, `engine run --bridge URL`).

`topics` names the MQTT topic of a label or a stream's status (reversible escaping of the stream
id), `buffer` holds labels while the broker is away (bounded, drop-oldest, counted), `status`
follows each stream for `--stream-status`, `mqtt` parses the broker URL and wraps the paho-mqtt
client (QoS 1, TLS, credentials, reconnect with back-off). The ZeroMQ side (subscribe,
decode_label, the loop) is the framework's, `engine/framework/bridging.py`.

This package imports nothing of the project but `engine.errors`.
"""
