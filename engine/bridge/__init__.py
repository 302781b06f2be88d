"""Labels to an MQTT broker (`engine bridge --to mqtt://HOST:PORT/TOPIC`).

`topics` names the MQTT topic of a label (reversible escaping of the stream id), `buffer` holds
labels while the broker is away (bounded, drop-oldest, counted), `mqtt` parses the broker URL and
wraps the paho-mqtt client (QoS 1, TLS, credentials, reconnect with back-off). The ZeroMQ side
(subscribe, decode_label) is the command's, `engine/framework/commands/bridge.py`.

This package imports nothing of the project but `engine.errors`.
"""
